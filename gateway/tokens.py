"""Token counting for when a backend gives no ``usage``, and for limits, in
bounded time: past a size, texts are estimated from what was counted.

tiktoken downloads its rank files on first use, which fails offline; the
``bpe-openai`` package ships the standard files, so they seed tiktoken's own
cache (same file name, same checksum check) and tiktoken never goes online.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import tempfile
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import tiktoken

_RANK_FILE_URL = "https://openaipublic.blob.core.windows.net/encodings/{name}.tiktoken"

# OpenAI's accounting for chat messages: a few tokens of framing per message
# and per reply (the numbers OpenAI's cookbook gives for current models).
TOKENS_PER_MESSAGE = 3
TOKENS_PER_REPLY = 3
# Bounds on the work of one count (see Tally): about 10 ms at worst here.
EXACT_CHARS = 64 * 1024
SEGMENT_CHARS = 8 * 1024
DEFAULT_TOKENS_PER_CHAR = 0.25
# Counts of texts seen recently (a conversation's history is sent every turn).
COUNT_CACHE_SIZE = 65_536


def seed_tiktoken_cache(name: str) -> None:
    """Put the packaged rank file where tiktoken looks before downloading."""
    cache_dir = Path(
        os.environ.get("TIKTOKEN_CACHE_DIR")
        or os.environ.get("DATA_GYM_CACHE_DIR")
        or Path(tempfile.gettempdir()) / "data-gym-cache"
    )
    url = _RANK_FILE_URL.format(name=name)
    cached = cache_dir / hashlib.sha1(url.encode()).hexdigest()
    if cached.exists():
        return
    packaged = resources.files("bpe_openai") / "data" / f"{name}.tiktoken.gz"
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = cached.with_suffix(f".{os.getpid()}.tmp")
    partial.write_bytes(gzip.decompress(packaged.read_bytes()))
    partial.replace(cached)


class TokenCounter:
    """Counts tokens with one tiktoken encoding, loaded once (off the event loop)."""

    # cl100k_base: counts are estimates for most backends anyway (Llama, Qwen and
    # DeepSeek have tokenizers of their own), and it holds half o200k_base's
    # ranks (about 30 MB less resident memory per process).
    def __init__(self, encoding_name: str = "cl100k_base") -> None:
        self._name = encoding_name
        self._encoding: tiktoken.Encoding | None = None
        self._lock = threading.Lock()
        # Counts of texts seen lately, by (length, hash): a conversation's history
        # comes back every turn (resent by chat clients, rebuilt for /v1/responses),
        # and only its new text needs encoding. Two ints an entry, whatever the text.
        self._counts: dict[tuple[int, int], int] = {}

    def load(self) -> tiktoken.Encoding:
        if self._encoding is None:
            with self._lock:
                if self._encoding is None:
                    seed_tiktoken_cache(self._name)
                    self._encoding = tiktoken.get_encoding(self._name)
        return self._encoding

    def count(self, text: str) -> int:
        if not text:
            return 0
        if len(text) <= SEGMENT_CHARS:
            return self._count_piece(text)
        return self.count_texts((text,))

    def _count_piece(self, text: str) -> int:
        """One text of at most ``SEGMENT_CHARS``, remembered for a while."""
        key = (len(text), hash(text))
        found = self._counts.get(key)
        if found is None:
            if len(self._counts) >= COUNT_CACHE_SIZE:
                self._counts.clear()  # bounded; the next requests simply encode again
            found = self._counts[key] = len(self.load().encode_ordinary(text))
        return found

    def count_texts(self, texts: Iterable[str]) -> int:
        """The tokens of several texts, in bounded time (see ``Tally``)."""
        tally = Tally(self._count_piece)
        for text in texts:
            tally.add(text)
        return tally.total()

    def count_messages(self, messages: Sequence[dict[str, Any]]) -> int:
        # Most prompts: a few plain-text messages, each one encoder call, with
        # nothing for ``Tally`` to cut or estimate.
        total = TOKENS_PER_REPLY
        chars = 0
        for message in messages:
            content = message.get("content")
            if type(content) is not str or "tool_calls" in message:
                return self._count_messages_tallied(messages)
            chars += len(content)
            if len(content) > SEGMENT_CHARS or chars > EXACT_CHARS:
                return self._count_messages_tallied(messages)
            total += TOKENS_PER_MESSAGE + (self._count_piece(content) if content else 0)
        return total

    def _count_messages_tallied(self, messages: Iterable[dict[str, Any]]) -> int:
        tally = Tally(self._count_piece)
        framing = TOKENS_PER_REPLY
        for message in messages:
            framing += TOKENS_PER_MESSAGE
            tally.add(_message_text(message))
        return framing + tally.total()

    def count_request(self, body: Mapping[str, Any]) -> int:
        """The prompt of a request body: chat ``messages``, or a ``prompt`` or
        embeddings ``input``."""
        if "messages" in body:
            return self.count_messages(body["messages"])
        return self.count_prompt(body.get("prompt", body.get("input", "")))

    def count_prompt(self, prompt: Any) -> int:
        if isinstance(prompt, str):
            return self.count(prompt)
        if isinstance(prompt, list) and prompt and isinstance(prompt[0], int):
            return len(prompt)  # already token ids
        if isinstance(prompt, list):
            ids = sum(len(item) for item in prompt if isinstance(item, list))
            return ids + self.count_texts(item for item in prompt if isinstance(item, str))
        return 0


class Tally:
    """Counts texts exactly up to ``EXACT_CHARS`` characters in all, then
    estimates the rest at the rate (tokens per character) counted so far, so
    a count costs bounded time on the event loop whatever the input. Each
    call to the encoder gets at most ``SEGMENT_CHARS``: byte-pair merging of
    one long "word" costs more than linear time in its length."""

    __slots__ = ("_count", "_exact_chars", "_skipped_chars", "_tokens")

    def __init__(self, count: Callable[[str], int]) -> None:
        self._count = count
        self._tokens = 0
        self._exact_chars = 0
        self._skipped_chars = 0

    def add(self, text: str) -> None:
        room = EXACT_CHARS - self._exact_chars
        if len(text) > room:
            self._skipped_chars += len(text) - max(room, 0)
            text = text[: max(room, 0)]
        self._exact_chars += len(text)
        start = 0
        while start < len(text):
            end = start + SEGMENT_CHARS
            if end < len(text):  # cut at a space when one is near, not inside a word
                space = text.rfind(" ", end - 256, end)
                end = space if space > start else end
            self._tokens += self._count(text[start:end])
            start = end

    def total(self) -> int:
        if not self._skipped_chars:
            return self._tokens
        rate = self._tokens / self._exact_chars if self._exact_chars else DEFAULT_TOKENS_PER_CHAR
        return self._tokens + round(self._skipped_chars * rate)


def _message_text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str) and "tool_calls" not in message:
        return content  # most messages, at once
    parts: list[str] = []
    if isinstance(content, str):
        parts.append(content)
    elif isinstance(content, list):
        parts.extend(str(p.get("text", "")) for p in content if isinstance(p, dict))
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        parts.append(f"{function.get('name', '')}{function.get('arguments', '')}")
    return "".join(parts)
