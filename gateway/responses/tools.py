"""Tools of the Responses API, and how each kind reaches a chat backend.

A ``ToolKind`` owns one ``type`` of the request's ``tools`` and the item types
that kind produces and consumes: it turns its declarations into chat tools,
normalizes its input items for storage, and turns its items into chat
messages. ``function`` is the one kind built in; another kind (``file_search``,
say) is one more ``ToolKind`` in the ``ToolKinds`` the service is built with.
A tool type, item type or ``tool_choice`` no kind owns is refused with a 400
naming the field.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from adapters.errors import InvalidRequestError
from gateway.responses.ids import new_id

Body = dict[str, Any]


def unsupported(message: str, param: str) -> InvalidRequestError:
    return InvalidRequestError(message, param=param, code="unsupported_parameter")


class ToolKind(Protocol):
    """How one kind of tool reaches a chat backend."""

    tool_type: str  # its ``type`` in the request's ``tools``
    item_types: frozenset[str]  # the item types it owns, in input, history and output

    def chat_tools(self, tool: Body, param: str) -> list[Body]:
        """The chat tools of one declaration (``param`` names it in errors)."""
        ...

    def normalize(self, item: Body, param: str) -> Body:
        """One of its input items as stored: an id and a status."""
        ...

    def add_messages(self, item: Body, messages: list[Body]) -> None:
        """Append one of its items to the chat messages being built."""
        ...


class FunctionTools:
    """``{"type": "function"}`` tools: chat function tools; ``function_call``
    items are assistant ``tool_calls``, ``function_call_output`` items are
    ``tool`` messages."""

    tool_type = "function"
    item_types = frozenset({"function_call", "function_call_output"})
    _REFUSED = ("allowed_callers", "async", "defer_loading", "output_schema")

    def chat_tools(self, tool: Body, param: str) -> list[Body]:
        for name in self._REFUSED:
            value = tool.get(name)
            if value not in (None, False) and value != ["direct"]:
                raise unsupported(
                    f"Function tools with '{name}' are not supported by this gateway.",
                    f"{param}.{name}",
                )
        function: Body = {"name": tool["name"]}
        for key in ("description", "parameters", "strict"):
            if tool.get(key) is not None:
                function[key] = tool[key]
        return [{"type": "function", "function": function}]

    def normalize(self, item: Body, param: str) -> Body:
        prefix = "fc" if item["type"] == "function_call" else "fco"
        return {**item, "id": item.get("id") or new_id(prefix), "status": "completed"}

    def add_messages(self, item: Body, messages: list[Body]) -> None:
        if item["type"] == "function_call":
            call = {
                "id": item["call_id"],
                "type": "function",
                "function": {"name": item["name"], "arguments": item["arguments"]},
            }
            last = messages[-1] if messages else None
            # Calls made in one assistant turn are one assistant message in chat.
            if last is not None and last["role"] == "assistant":
                last.setdefault("tool_calls", []).append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
            return
        output = item["output"]
        if not isinstance(output, str):
            output = "".join(part.get("text", "") for part in output if isinstance(part, dict))
        messages.append({"role": "tool", "tool_call_id": item["call_id"], "content": output})


class ToolKinds:
    """The tool kinds a gateway serves, by tool type and by item type."""

    def __init__(self, kinds: Iterable[ToolKind]) -> None:
        self.by_tool: dict[str, ToolKind] = {}
        self.by_item: dict[str, ToolKind] = {}
        for kind in kinds:
            self.by_tool[kind.tool_type] = kind
            self.by_item.update(dict.fromkeys(kind.item_types, kind))

    def chat_tools(self, tools: list[Body]) -> list[Body]:
        chat: list[Body] = []
        for index, tool in enumerate(tools):
            kind = self.by_tool.get(tool["type"])
            if kind is None:
                served = ", ".join(f"'{t}'" for t in sorted(self.by_tool))
                raise unsupported(
                    f"The tool type '{tool['type']}' is not supported by this gateway "
                    f"(supported: {served}).",
                    f"tools[{index}].type",
                )
            chat.extend(kind.chat_tools(tool, f"tools[{index}]"))
        return chat

    def item_kind(self, item_type: str, param: str) -> ToolKind:
        kind = self.by_item.get(item_type)
        if kind is None:
            raise unsupported(
                f"Items of type '{item_type}' are not supported by this gateway.", param
            )
        return kind

    def tool_choice(self, choice: Any, chat_tools: list[Body]) -> tuple[Any, list[Body]]:
        """The chat ``tool_choice``, and the chat tools it leaves offered."""
        if choice is None or isinstance(choice, str):
            return choice, chat_tools
        if choice["type"] == "function":
            return {"type": "function", "function": {"name": choice["name"]}}, chat_tools
        if choice["type"] in self.by_tool:
            # A built-in tool this gateway runs itself (file_search): it runs
            # before the model whatever the choice; the backend gets none.
            return None, chat_tools
        if choice["type"] == "allowed_tools":
            # Chat backends rarely know allowed_tools: offer only those tools instead.
            allowed = {t.get("name") for t in choice["tools"] if t.get("type") == "function"}
            kept = [t for t in chat_tools if t["function"]["name"] in allowed]
            return choice["mode"], kept
        raise unsupported(
            f"tool_choice of type '{choice['type']}' is not supported by this gateway.",
            "tool_choice.type",
        )


def default_tool_kinds() -> ToolKinds:
    return ToolKinds([FunctionTools()])
