"""Anthropic's Messages API event stream -> OpenAI chat.completion.chunk dicts.

Events (message_start, content_block_start/delta/stop, message_delta,
message_stop, ping, error) are fed in order; each yields the OpenAI chunks it
stands for: text, thinking (``reasoning_content``) and tool-call argument
deltas, a finish chunk, then the usage chunk.
"""

from __future__ import annotations

from adapters.anthropic.format import error_from_event, finish_reason, openai_usage
from adapters.translation import Body, chat_chunk, usage_chunk


class AnthropicStream:
    """Anthropic's stream events, fed in order, become OpenAI chunks.

    The role rides on the first chunk that carries something, so a stream that
    fails before any content can still be retried elsewhere by the router.
    """

    def __init__(self, created: int) -> None:
        self.created = created
        self.id = ""
        self.model = ""
        self.done = False
        self._usage: Body = {}
        self._tool_positions: dict[int, int] = {}  # content block index -> tool_calls index
        self._role_sent = False

    def feed(self, event: Body) -> list[Body]:
        kind = event.get("type")
        if kind == "message_start":
            message = event.get("message") or {}
            self.id = str(message.get("id", ""))
            self.model = str(message.get("model", ""))
            self._usage = dict(message.get("usage") or {})
            return []
        if kind == "content_block_start":
            return self._block_start(int(event.get("index", 0)), event.get("content_block") or {})
        if kind == "content_block_delta":
            return self._block_delta(int(event.get("index", 0)), event.get("delta") or {})
        if kind == "message_delta":
            # Its usage counts are cumulative: they replace message_start's.
            counts = event.get("usage") or {}
            self._usage.update({k: v for k, v in counts.items() if v is not None})
            stop_reason = (event.get("delta") or {}).get("stop_reason")
            return [self._chunk({}, finish_reason(stop_reason))]
        if kind == "message_stop":
            self.done = True
            return [usage_chunk(self.id, self.created, self.model, openai_usage(self._usage))]
        if kind == "error":
            raise error_from_event(event.get("error") or {})
        return []  # ping, content_block_stop, and event types Anthropic may add

    def _chunk(self, delta: Body, finish: str | None = None) -> Body:
        if not self._role_sent:
            delta = {"role": "assistant", **delta}
            self._role_sent = True
        return chat_chunk(self.id, self.created, self.model, 0, delta, finish)

    def _block_start(self, index: int, block: Body) -> list[Body]:
        kind = block.get("type")
        if kind == "tool_use":
            position = len(self._tool_positions)
            self._tool_positions[index] = position
            call = {
                "index": position,
                "id": block.get("id"),
                "type": "function",
                "function": {"name": block.get("name"), "arguments": ""},
            }
            return [self._chunk({"tool_calls": [call]})]
        if kind == "text" and block.get("text"):
            return [self._chunk({"content": block["text"]})]
        if kind == "thinking" and block.get("thinking"):
            return [self._chunk({"reasoning_content": block["thinking"]})]
        return []

    def _block_delta(self, index: int, delta: Body) -> list[Body]:
        kind = delta.get("type")
        if kind == "text_delta":
            return [self._chunk({"content": delta.get("text", "")})]
        if kind == "thinking_delta":
            return [self._chunk({"reasoning_content": delta.get("thinking", "")})]
        if kind == "input_json_delta" and delta.get("partial_json"):
            position = self._tool_positions.get(index)
            if position is not None:
                arguments = {"index": position, "function": {"arguments": delta["partial_json"]}}
                return [self._chunk({"tool_calls": [arguments]})]
        return []  # signature_delta and citations_delta have no OpenAI counterpart
