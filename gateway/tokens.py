"""Token counting for when a backend gives no ``usage``, and for limits.

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
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import tiktoken

_RANK_FILE_URL = "https://openaipublic.blob.core.windows.net/encodings/{name}.tiktoken"

# OpenAI's accounting for chat messages: a few tokens of framing per message
# and per reply (the numbers OpenAI's cookbook gives for current models).
TOKENS_PER_MESSAGE = 3
TOKENS_PER_REPLY = 3
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
        key = (len(text), hash(text))
        found = self._counts.get(key)
        if found is None:
            if len(self._counts) >= COUNT_CACHE_SIZE:
                self._counts.clear()  # bounded; the next requests simply encode again
            found = self._counts[key] = len(self.load().encode_ordinary(text))
        return found

    def count_messages(self, messages: Iterable[dict[str, Any]]) -> int:
        total = TOKENS_PER_REPLY
        for message in messages:
            total += TOKENS_PER_MESSAGE + self.count(_message_text(message))
        return total

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
            return sum(self.count_prompt(item) for item in prompt)
        return 0


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
