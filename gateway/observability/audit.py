"""The audit log: one JSON line per inference request with its prompt and its
completion (a stream's assembled text), configured patterns masked; callers
whose ``data_retention`` is none get an entry without either.

The request path only appends the finished ``AccessRecord`` to a deque (no
lock, no wake-up: a thread woken per request cost the gateway half its
throughput); a writer thread drains it every ``FLUSH_SECONDS``, masks,
serializes and appends in one write, so a slow disk never stalls the event
loop. ``close`` writes everything still queued before it returns. The file
is rotated past ``max_bytes`` to ``<name>.<UTC time>``; rotated files beyond
``backups``, or older than ``retention_days``, are deleted. Several workers
may share one file: a lock file serializes rotation, and a writer whose file
was rotated by another reopens the new one.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import threading
import time
from collections import deque
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from gateway.config.observability import AuditConfig
from gateway.observability.logs import AccessRecord, UtcClock, count_findings

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
# Phone-like digit groups (+country, (area), separators); masked only when
# they hold 9 to 15 digits, so dates, years and small numbers stay.
PHONE = re.compile(
    r"(?<![\w+.])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{1,4}\)[\s.-]?)?"
    r"(?:\d{9,15}|\d{1,4}(?:[\s.-]\d{2,4}){1,5})(?!\w|\.\d)"
)
# What a default pattern needs somewhere in serialized JSON (an address's
# "@", a phone number's digits; JSON escapes only ever add digits), each as
# NUL, every other byte as it is (serialized JSON holds no raw NUL).
_HINT_MARKS = bytes(0 if byte in b"@0123456789" else byte for byte in range(256))
MASK = "[REDACTED]"
_IDLE_SECONDS = 60.0  # the writer prunes old files at least this often
FLUSH_SECONDS = 0.2  # how often the writer drains what the requests queued
_DIGIT = re.compile(r"\d")
# Entries waiting for the writer; past this (a stalled disk) new ones are
# dropped and counted rather than growing memory without bound.
MAX_QUEUED = 100_000


# Python's regular expressions hold the GIL: a long text is masked a piece at
# a time (cut at line ends), so the writer thread lets the event loop run.
_SEGMENT_CHARS = 64 * 1024


def _segments(text: str) -> Iterator[str]:
    start = 0
    while start < len(text):
        end = start + _SEGMENT_CHARS
        if end < len(text):
            cut = text.rfind("\n", start, end)
            end = cut + 1 if cut > start else end
        yield text[start:end]
        start = end
        time.sleep(0)  # hand the GIL to the event loop between pieces


def _phone_mask(match: re.Match[str]) -> str:
    digits = sum(c.isdigit() for c in match.group())
    return "[PHONE]" if 9 <= digits <= 15 else match.group()


def _holds_hint(raw: bytes) -> bool:
    # bytes.translate marks the hints in one C loop (three times faster than a
    # regular expression's character-set search, on every entry); deleting
    # nothing, it builds no table of its own per call. An int is looked for in
    # bytes with memchr (a bytes operand is first tried as an integer, raising).
    return 0 in raw.translate(_HINT_MARKS)


class Redactor:
    """Masks every string in a JSON-like value with the configured patterns.

    The default patterns are only run on text that could match them (an
    ``@`` for an address, a digit for a phone number): most text has
    neither, and a cheap test spares two regular-expression scans."""

    def __init__(self, patterns: list[str], defaults: bool = True) -> None:
        self._defaults = defaults
        self._rules: list[tuple[re.Pattern[str], str]] = [(re.compile(p), MASK) for p in patterns]

    def text(self, value: str) -> str:
        if len(value) > _SEGMENT_CHARS:
            return "".join(self._segment(piece) for piece in _segments(value))
        return self._segment(value)

    def _segment(self, value: str) -> str:
        if self._defaults:
            if "@" in value:
                value = EMAIL.sub("[EMAIL]", value)
            if _DIGIT.search(value) is not None:
                value = PHONE.sub(_phone_mask, value)
        for pattern, replacement in self._rules:
            value = pattern.sub(replacement, value)
        return value

    def serialized(self, raw: bytes | None) -> orjson.Fragment | Any:
        """A JSON value (``raw``) masked, for ``orjson.dumps``. With the
        default patterns alone, JSON holding neither an ``@`` nor a digit
        cannot hold a match: it goes out as it is, never parsed (most prompts
        and answers; a JSON escape only adds digits, never removes one)."""
        if raw is None:
            return None
        if not self._rules and (not self._defaults or not _holds_hint(raw)):
            return orjson.Fragment(raw)
        return self.value(orjson.loads(raw))

    def value(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {key: self.value(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.value(item) for item in value]
        return value


def _prompt(body: dict[str, Any]) -> Any:
    for key in ("messages", "prompt", "input"):
        if key in body:
            return body[key]
    return None


def _completions(completion: Any) -> list[str] | None:
    """One text per choice; a stream's pieces joined into one text."""
    if isinstance(completion, list):
        return ["".join(completion)]
    if not isinstance(completion, dict):
        return None
    texts = []
    for choice in completion.get("choices") or ():
        if "text" in choice:
            texts.append(str(choice.get("text") or ""))
            continue
        message = choice.get("message") or {}
        texts.append(str(message.get("content") or ""))
    return texts


def _masked_again(texts: list[str] | None, restored: dict[str, str] | None) -> list[str] | None:
    """Completions with the caller's restored values back under their placeholders."""
    if not texts or not restored:
        return texts
    for placeholder, value in restored.items():
        texts = [text.replace(value, placeholder) for text in texts]
    return texts


# data_retention values that mean "keep nothing": the entry keeps its
# metadata (who, when, which model, tokens) without prompt or completion.
_KEEP_NOTHING = frozenset({"none", "zero", "0", "false", "off"})


def keeps_content(data_retention: Any) -> bool:
    if data_retention is None:
        return True
    if isinstance(data_retention, bool | int | float):
        return bool(data_retention)
    return str(data_retention).strip().lower() not in _KEEP_NOTHING


def audit_entry(record: AccessRecord) -> dict[str, Any]:
    """One finished request's entry, taken on the request path: no time yet,
    the prompt serialized and the completion as its texts, both not yet masked.

    The entry holds no object of the request's or the answer's: a queue
    holding those (through the access record) kept thousands of containers
    alive, which the garbage collector then walked several times a second
    under load."""
    body = record.request_body or {}
    retention = record.data_retention
    keep = retention is None or keeps_content(retention)
    entry: dict[str, Any] = {
        "time": None,
        "request_id": record.request_id,
        "key_name": record.key_name,
        "path": record.path,
        "model": record.model,
        "target": record.target,
        "status": record.status,
        "error_type": record.error_type,
        "stream": bool(body.get("stream")),
        "prompt": orjson.dumps(_prompt(body), default=str) if keep else None,
        "completion": _completions(record.completion) if keep else None,
        "prompt_tokens": record.prompt_tokens,
        "completion_tokens": record.completion_tokens,
    }
    if retention is not None:
        entry["data_retention"] = retention
    if record.guardrails:
        # What was found and done, never the values (the prompt holds placeholders).
        entry["guardrails"] = [
            {"guardrail": g, "stage": s, "action": a, "kind": k, "count": n}
            for (g, s, a, k), n in count_findings(record.guardrails).items()
        ]
    if record.cache is not None:
        entry["cache"] = record.cache
    return entry


# A queued entry: when the request ended, its entry, and the values restored
# for the caller (masked again in the completion, never written).
Pending = tuple[float, dict[str, Any], dict[str, str] | None]


class AuditLog:
    def __init__(self, config: AuditConfig, log: Any) -> None:
        self._config = config
        self._path = Path(config.path)
        self._lock_path = self._path.with_name(f".{self._path.name}.lock")
        self._redactor = Redactor(config.redact, config.redact_defaults)
        self._clock = UtcClock("+00:00")  # as datetime.isoformat writes UTC
        self._log = log
        # deque.append and popleft are atomic: the request path takes no lock.
        self._queue: deque[Pending] = deque()
        self._closing = threading.Event()
        self.dropped = 0
        self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
        self._fd: int | None = None

    def start(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        self._thread.start()

    def write(self, record: AccessRecord) -> None:
        """Queue one finished request (ignored when it never got a parsed body)."""
        if record.request_body is None:
            return
        if len(self._queue) >= MAX_QUEUED:
            self.dropped += 1
            if self.dropped % 1000 == 1:
                self._log.error("audit.dropped", path=str(self._path), dropped=self.dropped)
            return
        self._queue.append((time.time(), audit_entry(record), record.restored))

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued, then stop the writer."""
        self._closing.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    # ---- the writer thread -------------------------------------------------

    def _run(self) -> None:
        self._prune()
        last_prune = time.monotonic()
        while True:
            closing = self._closing.wait(FLUSH_SECONDS)
            batch = self._drain()
            if batch:
                try:
                    self._append(list(self._lines(batch)))
                except OSError as exc:
                    self._log.error("audit.write_failed", path=str(self._path), error=str(exc))
            if closing:
                break
            if time.monotonic() - last_prune >= _IDLE_SECONDS:
                self._prune()
                last_prune = time.monotonic()
        if self._fd is not None:
            os.close(self._fd)

    def _drain(self) -> list[Pending]:
        queued = self._queue
        return [queued.popleft() for _ in range(len(queued))]

    def _lines(self, batch: list[Pending]) -> Iterator[bytes]:
        clock, redactor = self._clock, self._redactor
        for at, entry, restored in batch:
            entry["time"] = clock.iso(at)
            entry["prompt"] = redactor.serialized(entry["prompt"])
            completion = _masked_again(entry["completion"], restored)
            if completion is not None:
                entry["completion"] = redactor.serialized(orjson.dumps(completion))
            yield orjson.dumps(entry, default=str, option=orjson.OPT_APPEND_NEWLINE)

    def _append(self, lines: list[bytes]) -> None:
        """Write the lines, rotating whenever the next one would not fit (a
        file only outgrows ``max_bytes`` when one line alone is larger)."""
        with self._exclusive():
            fd = self._current_fd()
            size = os.fstat(fd).st_size
            pending: list[bytes] = []
            for line in lines:
                if size and size + len(line) > self._config.max_bytes:
                    os.write(fd, b"".join(pending))
                    pending, size = [], 0
                    self._rotate()
                    fd = self._current_fd()
                pending.append(line)
                size += len(line)
            os.write(fd, b"".join(pending))

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        lock = os.open(self._lock_path, os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield
        finally:
            os.close(lock)

    def _current_fd(self) -> int:
        """The open file, reopened when another writer rotated it away."""
        if self._fd is not None:
            try:
                if os.stat(self._path).st_ino == os.fstat(self._fd).st_ino:
                    return self._fd
            except FileNotFoundError:
                pass
            os.close(self._fd)
        # Prompts are private: only the gateway's user may read them.
        self._fd = os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        return self._fd

    def _rotate(self) -> None:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        os.replace(self._path, self._path.with_name(f"{self._path.name}.{stamp}"))
        self._log.info("audit.rotated", path=str(self._path))
        self._prune()

    def rotated_files(self) -> list[Path]:
        """Rotated files, oldest first (their names sort by time)."""
        prefix = self._path.name + "."
        return sorted(p for p in self._path.parent.glob(prefix + "*") if p.is_file())

    def _prune(self) -> None:
        rotated = self.rotated_files()
        keep = rotated[max(0, len(rotated) - self._config.backups) :]
        horizon = time.time() - self._config.retention_days * 86400
        for path in rotated:
            with contextlib.suppress(FileNotFoundError):
                if path not in keep or path.stat().st_mtime < horizon:
                    path.unlink()
                    self._log.info("audit.deleted", path=str(path))
