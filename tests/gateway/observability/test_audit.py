"""The audit log: masking, rotation and retention of the real file, and what a
gateway process writes for plain and streamed chats."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path
from typing import Any

import jwt
import orjson
import pytest
from openai import OpenAI

from gateway.config.observability import AuditConfig
from gateway.observability.audit import AuditLog, Redactor, keeps_content
from gateway.observability.logs import AccessRecord, make_logger
from tests.helpers import FakeUpstream, Gateway

PRIVATE = "Call me on +1 (555) 123-4567 or mail jane.doe@example.com, order sk-abc123."


def test_default_and_configured_patterns_are_masked() -> None:
    redactor = Redactor([r"sk-[a-z0-9]+"])
    assert redactor.text(PRIVATE) == "Call me on [PHONE] or mail [EMAIL], order [REDACTED]."
    for phone in ("555-123-4567", "+44 20 7946 0958", "0612345678", "+33 6 12 34 56 78"):
        assert redactor.text(f"tel {phone}.") == "tel [PHONE]."
    kept = "On 2024-01-15 at 10:30, 3.14159265 of 12345 items cost $1,200 (v1.2.3)."
    assert redactor.text(kept) == kept
    nested = {"messages": [{"role": "user", "content": [{"type": "text", "text": PRIVATE}]}]}
    masked = redactor.value(nested)["messages"][0]["content"][0]["text"]
    assert "555" not in masked and "example.com" not in masked
    assert Redactor([], defaults=False).text(PRIVATE) == PRIVATE


@pytest.mark.parametrize(
    ("value", "rules", "expected"),
    [
        # Neither "@" nor a digit: the JSON goes out as it came, never parsed.
        (
            [{"role": "user", "content": "Say hello."}],
            [],
            [{"role": "user", "content": "Say hello."}],
        ),
        (["mail jane@example.com"], [], ["mail [EMAIL]"]),
        (["tel 555-123-4567"], [], ["tel [PHONE]"]),
        # A configured pattern can match anything: always parsed and walked.
        (["key sk-abc"], [r"sk-[a-z]+"], ["key [REDACTED]"]),
        (None, [], None),
    ],
)
def test_serialized_values_are_masked_as_walked_ones_are(
    value: Any, rules: list[str], expected: Any
) -> None:
    redactor = Redactor(rules)
    raw = None if value is None else orjson.dumps(value)
    assert orjson.loads(orjson.dumps({"v": redactor.serialized(raw)}))["v"] == expected


def test_an_entry_holds_the_request_as_it_was_when_it_finished(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    audit = AuditLog(AuditConfig(path=str(path)), make_logger(io.BytesIO()))
    audit.start()
    record = _record(1, "first words")
    audit.write(record)
    # The queue keeps its own serialized copy, not the request's objects.
    assert record.request_body is not None
    record.request_body["messages"][0]["content"] = "changed later"
    audit.close()
    [entry] = _entries([path])
    assert entry["prompt"] == [{"role": "user", "content": "first words"}]
    assert entry["completion"] == ["ok first words"]


def _record(n: int, text: str) -> AccessRecord:
    record = AccessRecord(f"req-{n}", "POST", "/v1/chat/completions", time.perf_counter())
    record.model, record.target, record.status = "chat", "up/m", 200
    record.request_body = {"model": "chat", "messages": [{"role": "user", "content": text}]}
    record.completion = {"choices": [{"message": {"role": "assistant", "content": "ok " + text}}]}
    return record


def _entries(paths: list[Path]) -> list[dict[str, Any]]:
    return [orjson.loads(line) for path in paths for line in path.read_bytes().splitlines()]


def test_rotation_keeps_backups_and_retention_deletes_old_files(tmp_path: Path) -> None:
    path = tmp_path / "audit" / "audit.jsonl"
    path.parent.mkdir()
    stale = path.with_name("audit.jsonl.20000101T000000.000000Z")
    stale.write_text("{}\n")
    old = time.time() - 40 * 86400
    os.utime(stale, (old, old))
    config = AuditConfig(path=str(path), max_bytes=1500, backups=3, retention_days=30)
    audit = AuditLog(config, make_logger(io.BytesIO()))
    audit.start()
    for n in range(40):
        audit.write(_record(n, f"message {n} from 555-123-4567"))
        if n % 5 == 4:
            time.sleep(0.05)  # several batches, so several rotations
    audit.close()
    rotated = audit.rotated_files()
    assert not stale.exists()  # older than retention_days
    assert len(rotated) == 3  # backups
    assert path.stat().st_size <= 1500
    assert all(p.stat().st_size <= 1500 for p in rotated)
    assert oct(path.stat().st_mode & 0o777) == oct(0o600)
    entries = _entries([*rotated, path])
    ids = [int(e["request_id"].split("-")[1]) for e in entries]
    assert ids == list(range(40 - len(ids), 40))  # the newest, in order, none lost in between
    assert all("[PHONE]" in e["prompt"][0]["content"] for e in entries)
    assert entries[-1]["completion"] == ["ok message 39 from [PHONE]"]


def test_a_file_rotated_away_by_another_writer_is_reopened(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    config = AuditConfig(path=str(path), max_bytes=10_000_000)
    log = make_logger(io.BytesIO())
    first, second = AuditLog(config, log), AuditLog(config, log)
    first.start()
    second.start()
    first.write(_record(1, "one"))
    second.write(_record(2, "two"))
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not (path.exists() and len(_entries([path])) == 2):
        time.sleep(0.02)  # both writers have written their first entry
    assert len(_entries([path])) == 2
    path.rename(tmp_path / "audit.jsonl.20000101T000000.000000Z")  # another worker rotated
    first.write(_record(3, "three"))
    second.write(_record(4, "four"))
    first.close()
    second.close()
    assert sorted(e["request_id"] for e in _entries([path])) == ["req-3", "req-4"]


def test_gateway_audits_prompts_and_completions_masked(tmp_path: Path) -> None:
    upstream = FakeUpstream(tmp_path, "echo")
    audit_path = tmp_path / "audit.jsonl"
    config = {
        "providers": {"echo": {"kind": "openai", "base_url": upstream.base_url}},
        "models": {"chat": {"targets": [{"provider": "echo", "model": "m"}]}},
        "audit": {"path": str(audit_path), "redact": [r"sk-[a-z0-9]+"]},
    }
    gateway = Gateway(tmp_path, config)
    try:
        client = OpenAI(base_url=gateway.base_url, api_key="unused", max_retries=0)
        messages = [{"role": "user", "content": PRIVATE}]
        plain = client.chat.completions.with_raw_response.create(model="chat", messages=messages)
        streamed = client.chat.completions.create(model="chat", messages=messages, stream=True)
        stream_text = "".join(c.choices[0].delta.content or "" for c in streamed if c.choices)
    finally:
        gateway.stop()  # the writer drains its queue on shutdown
        upstream.stop()
    assert "555" in stream_text  # the client gets the answer unmasked
    entries = _entries([audit_path])
    assert [e["stream"] for e in entries] == [False, True]
    masked = "Call me on [PHONE] or mail [EMAIL], order [REDACTED]."
    for entry in entries:
        assert entry["prompt"] == [{"role": "user", "content": masked}]
        assert entry["completion"] == [f"echo: {masked}"]
        assert entry["model"] == "chat" and entry["target"] == "echo/m"
        assert entry["status"] == 200
    assert entries[0]["request_id"] == plain.headers["x-request-id"]
    assert entries[0]["completion_tokens"] == plain.parse().usage.completion_tokens
    text = audit_path.read_text()
    assert "example.com" not in text and "123-4567" not in text and "sk-abc123" not in text


def test_a_caller_without_data_retention_leaves_no_content(tmp_path: Path) -> None:
    upstream = FakeUpstream(tmp_path, "echo")
    audit_path = tmp_path / "audit.jsonl"
    secret = "s" * 32
    config = {
        "providers": {"echo": {"kind": "openai", "base_url": upstream.base_url}},
        "models": {"chat": {"targets": [{"provider": "echo", "model": "m"}]}},
        "audit": {"path": str(audit_path)},
        "auth": {"jwt": {"algorithm": "HS256", "secret": "${JWT_SECRET}"}},
    }
    gateway = Gateway(tmp_path, config, env={"JWT_SECRET": secret})
    expiry = int(time.time()) + 300
    private = jwt.encode({"sub": "clinic", "exp": expiry, "data_retention": "none"}, secret)
    kept = jwt.encode({"sub": "lab", "exp": expiry, "data_retention": 30}, secret)
    messages = [{"role": "user", "content": "my diagnosis"}]
    try:
        for token in (private, kept):
            client = OpenAI(base_url=gateway.base_url, api_key=token, max_retries=0)
            answer = client.chat.completions.create(model="chat", messages=messages)
            assert answer.choices[0].message.content == "echo: my diagnosis"
            streamed = client.chat.completions.create(model="chat", messages=messages, stream=True)
            assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices)
    finally:
        gateway.stop()
        upstream.stop()
    entries = _entries([audit_path])
    assert [e["key_name"] for e in entries] == ["jwt:clinic"] * 2 + ["jwt:lab"] * 2
    for entry in entries[:2]:
        assert entry["prompt"] is None and entry["completion"] is None
        assert entry["data_retention"] == "none" and entry["completion_tokens"] > 0
    for entry in entries[2:]:
        assert entry["prompt"] == messages and entry["completion"] == ["echo: my diagnosis"]
        assert entry["data_retention"] == 30
    assert "diagnosis" not in "".join(orjson.dumps(e).decode() for e in entries[:2])


@pytest.mark.parametrize(
    ("data_retention", "kept"),
    [
        *[(None, True), (30, True), ("30d", True), (True, True)],
        *[(0, False), (False, False), ("zero", False), (" None ", False), ("OFF", False)],
    ],
)
def test_which_data_retention_values_keep_content(data_retention: Any, kept: bool) -> None:
    assert keeps_content(data_retention) is kept
