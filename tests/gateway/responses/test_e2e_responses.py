"""End to end: the Responses API through the gateway to real vLLM engines
(tiny checkpoints on the CPU), with the official SDK."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from tokenizers import Tokenizer

from tests.engine_gateway import TINY_DIR, EngineGateway
from tests.gateway.responses.grammar import check_events, event_types

pytestmark = pytest.mark.e2e

# strict: vLLM then decodes the arguments against the schema (with a named
# tool_choice, the call itself is forced), so even random weights produce a
# valid call; the enum keeps the string short.
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather of a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string", "enum": ["Paris", "Rome"]}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}
WINDOW = 1024  # the engines' max_model_len (tests/engine_gateway.py)


@pytest.fixture(scope="module")
def client(engines_gateway: EngineGateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=engines_gateway.base_url, api_key="unused", max_retries=0)


def test_five_turns_by_previous_response_id(client: openai.OpenAI) -> None:
    previous, inputs = None, []
    for turn in range(5):
        response = client.responses.create(
            model="tiny-llama3",
            input=f"Turn {turn}: tell me more.",
            previous_response_id=previous,
            max_output_tokens=8,
        )
        assert response.status in ("completed", "incomplete") and response.output
        assert response.usage is not None
        inputs.append(response.usage.input_tokens)
        previous = response.id
    # The engine saw the whole conversation each turn: its own count grows.
    assert inputs == sorted(inputs) and len(set(inputs)) == 5
    assert previous is not None
    assert len(list(client.responses.input_items.list(previous))) == 9


def test_five_turns_through_a_conversation(client: openai.OpenAI) -> None:
    conversation = client.conversations.create(metadata={"test": "e2e"})
    inputs = []
    for turn in range(5):
        response = client.responses.create(
            model="tiny-qwen2",
            input=f"Turn {turn}.",
            conversation=conversation.id,
            max_output_tokens=8,
        )
        assert response.usage is not None
        inputs.append(response.usage.input_tokens)
    assert inputs == sorted(inputs) and len(set(inputs)) == 5
    items = list(client.conversations.items.list(conversation.id, order="asc"))
    assert [item.role for item in items] == ["user", "assistant"] * 5  # type: ignore[union-attr]


@pytest.mark.parametrize("model", ["tiny-llama3", "tiny-qwen2"])
def test_function_tool_loop(client: openai.OpenAI, model: str) -> None:
    called = client.responses.create(
        model=model,
        input="What is the weather in Paris?",
        tools=[WEATHER],  # type: ignore[list-item]
        tool_choice={"type": "function", "name": "get_weather"},
        max_output_tokens=600,  # the JSON grammar lets random weights pad with whitespace
    )
    calls = [item for item in called.output if item.type == "function_call"]
    assert calls, called.output
    call = calls[0]
    assert call.name == "get_weather" and call.call_id
    assert json.loads(call.arguments)["city"] in ("Paris", "Rome")
    answered = client.responses.create(
        model=model,
        previous_response_id=called.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "Sunny"}],
        tools=[WEATHER],  # type: ignore[list-item]
        tool_choice="none",
        max_output_tokens=8,
    )
    assert answered.output[-1].type == "message"
    kinds = [item.type for item in client.responses.input_items.list(answered.id, order="asc")]
    assert kinds == ["message", "function_call", "function_call_output"]


def test_streamed_function_call_follows_the_grammar(client: openai.OpenAI) -> None:
    with client.responses.stream(
        model="tiny-qwen2",
        input="Weather in Rome?",
        tools=[WEATHER],  # type: ignore[list-item]
        tool_choice={"type": "function", "name": "get_weather"},
        max_output_tokens=600,  # the JSON grammar lets random weights pad with whitespace
    ) as stream:
        events = [event.model_dump(exclude_unset=True) for event in stream]
    for item in events[-1]["response"]["output"]:
        item.pop("parsed_arguments", None)  # the SDK's own addition to its final snapshot
    response = check_events(events)
    assert "response.function_call_arguments.delta" in event_types(events)
    call = next(item for item in response["output"] if item["type"] == "function_call")
    assert json.loads(call["arguments"])["city"] in ("Paris", "Rome")


def think_bias() -> dict[str, int]:
    """Random weights rarely end their reasoning: make </think> likely (as the
    engine tests do), and a second <think> impossible."""
    tokenizer = Tokenizer.from_file(str(TINY_DIR / "tiny-deepseek-r1" / "tokenizer.json"))
    end, start = tokenizer.token_to_id("</think>"), tokenizer.token_to_id("<think>")
    return {str(end): 5, str(start): -100}


def test_deepseek_reasoning_becomes_reasoning_items(client: openai.OpenAI) -> None:
    both = 0
    for seed in range(1, 5):
        extra = {"logit_bias": think_bias(), "seed": seed}
        with client.responses.stream(
            model="tiny-deepseek-r1",
            input="Say hello.",
            max_output_tokens=40,
            temperature=1.0,
            extra_body=extra,
        ) as stream:
            events = [event.model_dump(exclude_unset=True) for event in stream]
        response = check_events(events)
        kinds = [item["type"] for item in response["output"]]
        if "reasoning" in kinds:
            assert kinds[0] == "reasoning"
            assert "response.reasoning_text.delta" in event_types(events)
        both += kinds[:2] == ["reasoning", "message"]
        stored = client.responses.retrieve(response["id"])
        assert [item.type for item in stored.output] == kinds
    assert both >= 1  # reasoning, then </think>, then an answer


def long_items(count: int, size: int) -> list[dict[str, Any]]:
    return [
        {"role": "user" if n % 2 == 0 else "assistant", "content": f"{n} " + "lorem ipsum " * size}
        for n in range(count)
    ]


def test_truncation_with_the_engines_own_tokenizer(client: openai.OpenAI) -> None:
    conversation = client.conversations.create(items=long_items(20, 30))  # type: ignore[arg-type]
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(
            model="tiny-llama3", input="Now?", conversation=conversation.id, max_output_tokens=8
        )
    assert caught.value.code == "context_length_exceeded"
    answer = client.responses.create(
        model="tiny-llama3",
        input="Now?",
        conversation=conversation.id,
        max_output_tokens=8,
        truncation="auto",
    )
    assert answer.usage is not None
    # The engine's own count of what it got: it fits, and not by dropping everything.
    assert WINDOW // 2 < answer.usage.input_tokens <= WINDOW - 8
