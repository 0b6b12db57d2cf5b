"""The Conversations API, and responses created with ``conversation``, through
the official SDK against a real gateway process."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from openai import OpenAI

from tests.helpers import FakeUpstream, Gateway

ALICE = "sk-alice-" + secrets.token_hex(8)
BOB = "sk-bob-" + secrets.token_hex(8)
MAX_ITEMS = 14


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, upstream: FakeUpstream) -> Iterator[Gateway]:
    tmp = tmp_path_factory.mktemp("conversations")
    config = {
        "providers": {"alpha": {"kind": "openai", "base_url": upstream.base_url}},
        "models": {"chat": {"targets": [{"provider": "alpha", "model": "m1"}]}},
        "auth": {"keys": [{"name": "alice", "key": "${ALICE}"}, {"name": "bob", "key": "${BOB}"}]},
        "state": {"max_items_per_conversation": MAX_ITEMS},
    }
    server = Gateway(tmp, config, env={"ALICE": ALICE, "BOB": BOB})
    yield server
    server.stop()


def client(gateway: Gateway, key: str = ALICE) -> OpenAI:
    return OpenAI(base_url=gateway.base_url, api_key=key, max_retries=0)


def texts(items: list[Any]) -> list[str]:
    return [part.text for item in items for part in item.content]


def test_conversation_lifecycle(gateway: Gateway) -> None:
    sdk = client(gateway)
    conversation = sdk.conversations.create(
        items=[{"role": "user", "content": "first"}, {"role": "assistant", "content": "second"}],
        metadata={"topic": "test"},
    )
    assert conversation.id.startswith("conv_") and conversation.object == "conversation"
    assert sdk.conversations.retrieve(conversation.id).metadata == {"topic": "test"}
    updated = sdk.conversations.update(conversation.id, metadata={"topic": "changed"})
    assert updated.metadata == {"topic": "changed"}
    added = sdk.conversations.items.create(
        conversation.id, items=[{"type": "message", "role": "user", "content": "third"}]
    )
    assert added.first_id == added.last_id and not added.has_more
    # Newest first by default; pages of one still walk the whole list.
    listed = list(sdk.conversations.items.list(conversation.id, limit=1))
    assert texts(listed) == ["third", "second", "first"]
    ascending = sdk.conversations.items.list(conversation.id, order="asc")
    assert texts(ascending.data) == ["first", "second", "third"]
    second = listed[1]
    assert second.role == "assistant" and second.content[0].type == "output_text"
    found = sdk.conversations.items.retrieve(second.id, conversation_id=conversation.id)
    assert found.id == second.id
    after_delete = sdk.conversations.items.delete(second.id, conversation_id=conversation.id)
    assert after_delete.id == conversation.id
    with pytest.raises(openai.NotFoundError):
        sdk.conversations.items.retrieve(second.id, conversation_id=conversation.id)
    assert texts(sdk.conversations.items.list(conversation.id, order="asc").data) == [
        "first",
        "third",
    ]
    deleted = sdk.conversations.delete(conversation.id)
    assert deleted.deleted and deleted.id == conversation.id
    with pytest.raises(openai.NotFoundError):
        sdk.conversations.retrieve(conversation.id)


def test_five_turns_through_a_conversation(gateway: Gateway, upstream: FakeUpstream) -> None:
    sdk = client(gateway)
    conversation = sdk.conversations.create(items=[{"role": "user", "content": "hello"}])
    for turn in range(5):
        ref: Any = conversation.id if turn % 2 else {"id": conversation.id}
        response = sdk.responses.create(model="chat", input=f"turn {turn}", conversation=ref)
        assert response.conversation is not None and response.conversation.id == conversation.id
    messages = upstream.requests()[-1]["body"]["messages"]
    assert len(messages) == 10  # hello, then four turns of question and answer, then turn 4
    assert messages[0] == {"role": "user", "content": "hello"}
    assert messages[-1] == {"role": "user", "content": "turn 4"}
    items = list(sdk.conversations.items.list(conversation.id, order="asc"))
    assert len(items) == 11 and texts(items)[-1] == "alpha: turn 4"
    # input_items of a conversation response: only its own turn.
    assert texts(list(sdk.responses.input_items.list(response.id))) == ["turn 4"]
    # Continuing the last response by id sees the conversation up to it.
    sdk.responses.create(model="chat", input="by id", previous_response_id=response.id)
    assert len(upstream.requests()[-1]["body"]["messages"]) == 12


def test_conversation_limit(gateway: Gateway) -> None:
    sdk = client(gateway)
    conversation = sdk.conversations.create(
        items=[{"role": "user", "content": f"item {i}"} for i in range(MAX_ITEMS - 1)]
    )
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.conversations.items.create(
            conversation.id,
            items=[{"role": "user", "content": "a"}, {"role": "user", "content": "b"}],
        )
    assert caught.value.code == "conversation_too_long"
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.responses.create(model="chat", input="one more", conversation=conversation.id)
    assert caught.value.param == "conversation"


def test_another_caller_gets_404(gateway: Gateway) -> None:
    conversation = client(gateway).conversations.create(items=[{"role": "user", "content": "x"}])
    bob = client(gateway, BOB)
    for call in (
        lambda: bob.conversations.retrieve(conversation.id),
        lambda: bob.conversations.update(conversation.id, metadata={"a": "b"}),
        lambda: bob.conversations.items.list(conversation.id),
        lambda: bob.conversations.items.create(
            conversation.id, items=[{"role": "user", "content": "y"}]
        ),
        lambda: bob.responses.create(model="chat", input="y", conversation=conversation.id),
        lambda: bob.conversations.delete(conversation.id),
    ):
        with pytest.raises(openai.NotFoundError):
            call()
    assert len(client(gateway).conversations.items.list(conversation.id).data) == 1


def test_errors_name_their_field(gateway: Gateway) -> None:
    sdk = client(gateway)
    with pytest.raises(openai.NotFoundError) as caught:
        sdk.responses.create(model="chat", input="x", conversation="conv_missing")
    assert caught.value.param == "conversation"
    conversation = sdk.conversations.create()
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.responses.create(
            model="chat", input="x", conversation=conversation.id, previous_response_id="resp_1"
        )
    assert caught.value.code == "mutually_exclusive_parameters"
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.conversations.items.list(conversation.id, limit=500)
    assert caught.value.param == "limit"
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.conversations.items.list(conversation.id, after="msg_nowhere")
    assert caught.value.param == "after"
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.conversations.create(items=[{"role": "user", "content": "x"}] * 21)
    assert caught.value.param == "items"
