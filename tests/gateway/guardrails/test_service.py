"""Guardrails through a real gateway process in front of the fake upstream,
driven with the OpenAI SDK: what the upstream received (its ``/_requests``)
shows that personal data never left the gateway, and the client gets its own
values back; blocks, a judge model, and findings split across stream chunks."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import orjson
import pytest

from tests.gateway.observability.scrape import scrape
from tests.helpers import FakeUpstream, Gateway, free_port

# One value of every kind the pii guardrail knows.
PII = {
    "EMAIL": "jane.doe@example.com",
    "PHONE": "+1 (555) 123-4567",
    "CREDIT_CARD": "4111 1111 1111 1111",
    "IBAN": "DE89 3704 0044 0532 0130 00",
    "IP_ADDRESS": "192.168.1.10",
    "SECRET": "sk-proj-Abcdefghijklmnopqrstuvwxyz0123456789",
}
PROMPT = (
    f"Mail {PII['EMAIL']}, call {PII['PHONE']}, card {PII['CREDIT_CARD']}, "
    f"IBAN {PII['IBAN']}, host {PII['IP_ADDRESS']} or 2001:db8::7, key {PII['SECRET']}."
)


def guarded_config(upstream: FakeUpstream, audit: Path) -> dict[str, Any]:
    def model(**extra: Any) -> dict[str, Any]:
        return {"targets": [{"provider": "alpha", "model": "m1"}], **extra}

    return {
        "providers": {
            "alpha": {"kind": "openai", "base_url": upstream.base_url},
            "nowhere": {"kind": "openai", "base_url": f"http://127.0.0.1:{free_port()}/v1"},
        },
        "audit": {"path": str(audit)},
        "guardrails": {
            "pii": {"kind": "pii", "action": "mask", "restore_in_response": True},
            "pii-block": {"kind": "pii", "action": "block", "entities": ["credit_card", "iban"]},
            "pii-out": {"kind": "pii", "action": "mask"},
            "no-secrets": {"kind": "regex", "patterns": ["(?i)internal[- ]only"]},
            "judge": {"kind": "model", "model": "guard", "block_when": "(?i)^unsafe"},
            "judge-down": {"kind": "model", "model": "down"},
            "judge-down-open": {"kind": "model", "model": "down", "on_error": "fail_open"},
        },
        "models": {
            "chat": model(guardrails={"input": ["pii"], "output": ["pii"]}),
            "strict": model(guardrails={"input": ["pii-block"]}),
            "policy": model(guardrails={"input": ["no-secrets"], "output": ["no-secrets"]}),
            "judged": model(guardrails={"input": ["pii", "judge"]}),
            "answers": model(guardrails={"output": ["pii-out"]}),
            "embed": model(guardrails={"input": ["pii"]}),
            "guard": {"targets": [{"provider": "alpha", "model": "guard-model"}]},
            "down": {
                "targets": [{"provider": "nowhere", "model": "g"}],
                "retries": {"attempts": 1},
            },
            "closed": model(guardrails={"input": ["judge-down"]}),
            "open": model(guardrails={"input": ["judge-down-open"]}),
        },
    }


@pytest.fixture(scope="module")
def guarded(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Gateway, FakeUpstream, Path]]:
    tmp = tmp_path_factory.mktemp("guardrails")
    upstream = FakeUpstream(tmp, "alpha")
    audit = tmp / "audit.jsonl"
    gateway = Gateway(tmp, guarded_config(upstream, audit))
    yield gateway, upstream, audit
    gateway.stop()
    upstream.stop()


@pytest.fixture
def gw(guarded: tuple[Gateway, FakeUpstream, Path]) -> tuple[openai.OpenAI, FakeUpstream]:
    gateway, upstream, _ = guarded
    upstream.reset()
    return openai.OpenAI(base_url=gateway.base_url, api_key="x", max_retries=0), upstream


def sent_upstream(upstream: FakeUpstream) -> str:
    """Everything the upstream received, as one text."""
    return orjson.dumps([r["body"] for r in upstream.requests()]).decode()


def ask(model: str, text: str) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}]}


def test_every_kind_is_masked_before_the_upstream_and_restored_in_the_answer(
    gw: tuple[openai.OpenAI, FakeUpstream],
) -> None:
    client, upstream = gw
    answer = client.chat.completions.create(**ask("chat", PROMPT))
    assert answer.choices[0].message.content == f"alpha: {PROMPT}"
    received = sent_upstream(upstream)
    for kind, value in PII.items():
        assert value not in received
        assert f"[{kind}_1]" in received
    assert "2001:db8::7" not in received and "[IP_ADDRESS_2]" in received


def test_a_stream_is_masked_and_restored_too(gw: tuple[openai.OpenAI, FakeUpstream]) -> None:
    client, upstream = gw
    stream = client.chat.completions.create(**ask("chat", PROMPT), stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == f"alpha: {PROMPT}"
    assert not any(value in sent_upstream(upstream) for value in PII.values())


def test_the_same_value_keeps_its_placeholder_across_messages(
    gw: tuple[openai.OpenAI, FakeUpstream],
) -> None:
    client, upstream = gw
    messages = [
        {"role": "system", "content": f"The user is {PII['EMAIL']}."},
        {"role": "user", "content": f"Write to {PII['EMAIL']} and bob@example.org."},
    ]
    answer = client.chat.completions.create(model="chat", messages=messages)
    sent = upstream.requests()[0]["body"]["messages"]
    assert sent[0]["content"] == "The user is [EMAIL_1]."
    assert sent[1]["content"] == "Write to [EMAIL_1] and [EMAIL_2]."
    assert answer.choices[0].message.content == f"alpha: {messages[1]['content']}"


def test_embeddings_inputs_are_masked(gw: tuple[openai.OpenAI, FakeUpstream]) -> None:
    client, upstream = gw
    client.embeddings.create(model="embed", input=[f"card {PII['CREDIT_CARD']}", "plain"])
    assert upstream.requests()[0]["body"]["input"] == ["card [CREDIT_CARD_1]", "plain"]


def test_a_block_is_a_400_naming_the_guardrail_never_the_text(
    gw: tuple[openai.OpenAI, FakeUpstream],
) -> None:
    client, upstream = gw
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(**ask("strict", f"pay with {PII['CREDIT_CARD']}"))
    error = refused.value.body
    assert isinstance(error, dict)
    assert error["code"] == "content_policy_violation"
    assert error["type"] == "invalid_request_error"
    assert "'pii-block'" in error["message"] and "4111" not in error["message"]
    assert error["param"] == "messages[0].content"
    assert upstream.requests() == []
    # What it does not look for passes.
    ok = client.chat.completions.create(**ask("strict", f"mail {PII['EMAIL']}"))
    assert ok.choices[0].message.content == f"alpha: mail {PII['EMAIL']}"


def test_a_regex_policy_blocks_requests(gw: tuple[openai.OpenAI, FakeUpstream]) -> None:
    client, upstream = gw
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(**ask("policy", "Share the INTERNAL-ONLY roadmap"))
    assert "'no-secrets'" in refused.value.message and "INTERNAL" not in refused.value.message
    assert upstream.requests() == []


def test_an_output_finding_split_across_chunks_is_masked_whole(
    gw: tuple[openai.OpenAI, FakeUpstream],
) -> None:
    client, _ = gw
    # The upstream streams exactly these pieces: the e-mail and the phone are cut.
    pieces = "[chunks:Write to bob@exa|mple.org or call +44 20 79|46 0958|, thanks]"
    stream = client.chat.completions.create(**ask("answers", pieces), stream=True)
    deltas = [c.choices[0].delta.content or "" for c in stream if c.choices]
    assert "".join(deltas) == "Write to [EMAIL_1] or call [PHONE_1], thanks"
    assert not any("bob" in d or "mple" in d or "79" in d or "0958" in d for d in deltas)
    whole = client.chat.completions.create(**ask("answers", pieces))
    assert whole.choices[0].message.content == "Write to [EMAIL_1] or call [PHONE_1], thanks"


def forced_call(model: str, text: str) -> dict[str, Any]:
    """A request the fake upstream answers with a call of ``send`` whose
    arguments echo ``text`` (streamed in two halves)."""
    tools = [{"type": "function", "function": {"name": "send", "parameters": {"type": "object"}}}]
    choice = {"type": "function", "function": {"name": "send"}}
    return {**ask(model, text), "tools": tools, "tool_choice": choice}


def streamed_arguments(client: openai.OpenAI, request: dict[str, Any]) -> str:
    stream = client.chat.completions.create(**request, stream=True)
    return "".join(
        call.function.arguments or ""
        for chunk in stream
        if chunk.choices
        for call in chunk.choices[0].delta.tool_calls or ()
        if call.function is not None
    )


def test_tool_call_arguments_pass_the_output_guardrails_streamed_or_not(
    gw: tuple[openai.OpenAI, FakeUpstream],
) -> None:
    client, _ = gw
    # '{"echo": "mail bob@example.org"}' is streamed cut at "b|ob@example.org".
    request = forced_call("answers", "mail bob@example.org")
    streamed = streamed_arguments(client, request)
    whole = client.chat.completions.create(**request).choices[0].message.tool_calls
    assert whole is not None
    assert orjson.loads(streamed) == orjson.loads(whole[0].function.arguments)
    assert orjson.loads(streamed) == {"echo": "mail [EMAIL_1]"}


def test_placeholders_in_streamed_tool_call_arguments_are_restored(
    gw: tuple[openai.OpenAI, FakeUpstream],
) -> None:
    client, upstream = gw
    # The upstream sees "[EMAIL_1] x" and streams '{"echo": "[' then 'EMAIL_1] x"}'.
    streamed = streamed_arguments(client, forced_call("chat", f"{PII['EMAIL']} x"))
    assert orjson.loads(streamed) == {"echo": f"{PII['EMAIL']} x"}
    assert PII["EMAIL"] not in sent_upstream(upstream)


def test_a_block_mid_stream_ends_it_with_an_error_event(
    gw: tuple[openai.OpenAI, FakeUpstream],
) -> None:
    client, _ = gw
    received = []
    stream = client.chat.completions.create(
        **ask("policy", "[chunks:All of this is inter|nal only, sorry]"), stream=True
    )
    with pytest.raises(openai.APIError) as ended:
        for chunk in stream:
            received.append(chunk.choices[0].delta.content or "" if chunk.choices else "")
    assert "'no-secrets'" in ended.value.message
    assert "nal only" not in "".join(received) and "inter" not in "".join(received)


def test_the_judge_model_refuses_what_it_calls_unsafe(
    gw: tuple[openai.OpenAI, FakeUpstream],
) -> None:
    client, upstream = gw
    # The fake judge answers the [chunks:...] text: "unsafe\nS1".
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(**ask("judged", "[chunks:unsafe|\nS1] build a weapon"))
    assert refused.value.code == "content_policy_violation"
    assert "'judge'" in refused.value.message
    assert [r["body"]["model"] for r in upstream.requests()] == ["guard-model"]


def test_the_judge_passes_safe_requests_and_reads_them_masked(
    gw: tuple[openai.OpenAI, FakeUpstream],
) -> None:
    client, upstream = gw
    answer = client.chat.completions.create(**ask("judged", f"Hello from {PII['EMAIL']}"))
    assert answer.choices[0].message.content == f"alpha: Hello from {PII['EMAIL']}"
    judged, served = upstream.requests()
    assert judged["body"]["model"] == "guard-model" and judged["body"]["temperature"] == 0
    assert judged["body"]["messages"] == [{"role": "user", "content": "Hello from [EMAIL_1]"}]
    assert served["body"]["model"] == "m1"


def test_an_unreachable_judge_refuses_or_lets_through_as_configured(
    gw: tuple[openai.OpenAI, FakeUpstream],
) -> None:
    client, upstream = gw
    with pytest.raises(openai.APIStatusError) as refused:
        client.chat.completions.create(**ask("closed", "Hello"))
    assert refused.value.status_code == 503 and "'judge-down'" in refused.value.message
    assert upstream.requests() == []
    answer = client.chat.completions.create(**ask("open", "Hello"))
    assert answer.choices[0].message.content == "alpha: Hello"


def test_text_completions_are_masked_and_restored_streaming_too(
    gw: tuple[openai.OpenAI, FakeUpstream],
) -> None:
    client, upstream = gw
    prompt = f"Reply to {PII['EMAIL']} about card {PII['CREDIT_CARD']}"
    whole = client.completions.create(model="chat", prompt=prompt)
    assert whole.choices[0].text == f"alpha: {prompt}"
    pieces = [
        c.choices[0].text
        for c in client.completions.create(model="chat", prompt=prompt, stream=True)
        if c.choices
    ]
    assert "".join(pieces) == f"alpha: {prompt}"
    assert [r["body"]["prompt"] for r in upstream.requests()] == [
        "Reply to [EMAIL_1] about card [CREDIT_CARD_1]"
    ] * 2


def test_findings_are_counted_and_audited_without_values(
    guarded: tuple[Gateway, FakeUpstream, Path], gw: tuple[openai.OpenAI, FakeUpstream]
) -> None:
    gateway, _, audit = guarded
    client, _ = gw
    client.chat.completions.create(**ask("chat", PROMPT))
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(**ask("strict", f"IBAN {PII['IBAN']}"))
    metrics = scrape(gateway.url)
    name = "vllm_gateway_guardrail_findings_total"
    assert metrics.value(name, guardrail="pii", action="mask") >= len(PII) + 1
    assert metrics.value(name, guardrail="pii-block", action="block") >= 1
    deadline = time.monotonic() + 10
    entries: list[dict[str, Any]] = []
    # The writer drains on a timer: wait for this test's last request (the IBAN block).
    last = '"guardrail":"pii-block","stage":"input","action":"block","kind":"IBAN"'
    while time.monotonic() < deadline and last not in (
        text := audit.read_text() if audit.exists() else ""
    ):
        time.sleep(0.1)
    entries = [orjson.loads(line) for line in text.splitlines() if "guardrails" in line]
    text = audit.read_text()
    assert [value for value in PII.values() if value in text] == []
    kinds = {f["kind"] for e in entries for f in e["guardrails"] if f["guardrail"] == "pii"}
    assert set(PII) <= kinds
    blocks = {(f["guardrail"], f["kind"]) for e in entries for f in e["guardrails"]}
    assert ("pii-block", "IBAN") in blocks


def test_a_key_can_bring_guardrails_of_its_own(tmp_path: Path) -> None:
    upstream = FakeUpstream(tmp_path, "alpha")
    secrets = {"careful": "sk-careful-0123456789", "plain": "sk-plain-0123456789"}
    keys = [
        {"name": name, "key_sha256": hashlib.sha256(secret.encode()).hexdigest()}
        for name, secret in secrets.items()
    ]
    keys[0]["guardrails"] = {"input": ["pii"]}
    config = {
        "providers": {"alpha": {"kind": "openai", "base_url": upstream.base_url}},
        "auth": {"keys": keys},
        "guardrails": {"pii": {"kind": "pii"}},
        "models": {"chat": {"targets": [{"provider": "alpha", "model": "m1"}]}},
    }
    gateway = Gateway(tmp_path, config)
    try:
        for name, secret in secrets.items():
            client = openai.OpenAI(base_url=gateway.base_url, api_key=secret, max_retries=0)
            client.chat.completions.create(**ask("chat", f"I am {PII['EMAIL']} ({name})"))
        sent = [r["body"]["messages"][0]["content"] for r in upstream.requests()]
        assert sent == ["I am [EMAIL_1] (careful)", f"I am {PII['EMAIL']} (plain)"]
    finally:
        gateway.stop()
        upstream.stop()


def test_the_responses_api_is_masked_and_restored_too(
    gw: tuple[openai.OpenAI, FakeUpstream],
) -> None:
    client, upstream = gw
    answer = client.responses.create(model="chat", input=PROMPT)
    assert answer.output_text == f"alpha: {PROMPT}"
    events = client.responses.create(model="chat", input=PROMPT, stream=True)
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert "".join(deltas) == f"alpha: {PROMPT}"
    received = sent_upstream(upstream)
    assert not any(value in received for value in PII.values())
    assert received.count("[CREDIT_CARD_1]") == 2
    with pytest.raises(openai.BadRequestError) as refused:
        client.responses.create(model="strict", input=f"card {PII['CREDIT_CARD']}")
    assert refused.value.code == "content_policy_violation"


def socket_turn(connection: Any, **create: Any) -> list[Any]:
    """One response.create on a WebSocket: its events up to the terminal or error one."""
    connection.response.create(**create)
    events = []
    for event in connection:
        events.append(event)
        if event.type in ("response.completed", "response.failed", "error"):
            return events
    raise AssertionError("the socket closed mid-turn")


def test_the_responses_websocket_mode_is_masked_restored_and_refused_too(
    gw: tuple[openai.OpenAI, FakeUpstream],
) -> None:
    client, upstream = gw
    with client.responses.connect() as connection:
        events = socket_turn(connection, model="chat", input=PROMPT)
        deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
        assert "".join(deltas) == f"alpha: {PROMPT}"
        received = sent_upstream(upstream)
        assert not any(value in received for value in PII.values())
        assert "[CREDIT_CARD_1]" in received
        [refused] = socket_turn(connection, model="strict", input=f"card {PII['CREDIT_CARD']}")
        assert refused.type == "error" and refused.error.code == "content_policy_violation"
        assert "'pii-block'" in refused.error.message and "4111" not in refused.error.message
