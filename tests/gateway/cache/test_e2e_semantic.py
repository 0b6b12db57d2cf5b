"""End to end: the semantic cache with the real all-MiniLM-L6-v2 engine of the
session's engine gateway. A gateway routes chat to its tiny Qwen2 engine and
embeds questions with ``minilm``: paraphrases are hits, other questions miss."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from tests.engine_gateway import EngineGateway
from tests.gateway.observability.scrape import scrape
from tests.helpers import Gateway

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def semantic(
    tmp_path_factory: pytest.TempPathFactory, engines_gateway: EngineGateway
) -> Iterator[Gateway]:
    engines = {"kind": "openai", "base_url": engines_gateway.base_url}
    config = {
        "providers": {"engines": engines},
        "cache": {"semantic": {"embedding_model": "minilm", "threshold": 0.9}},
        "models": {
            "chat": {"targets": [{"provider": "engines", "model": "tiny-qwen2"}], "cache": True},
            "minilm": {"targets": [{"provider": "engines", "model": "minilm"}]},
        },
    }
    gateway = Gateway(tmp_path_factory.mktemp("semantic"), config)
    yield gateway
    gateway.stop()


def ask(gateway: Gateway, text: str, system: str = "Answer briefly.") -> tuple[str, str]:
    client = openai.OpenAI(base_url=gateway.base_url, api_key="x", max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model="chat",
        messages=[{"role": "system", "content": system}, {"role": "user", "content": text}],
        temperature=0,
        max_tokens=12,
    )
    return raw.parse().choices[0].message.content or "", raw.headers["x-gateway-cache"]


def test_paraphrases_hit_and_other_questions_miss(semantic: Gateway) -> None:
    original, status = ask(semantic, "What is the capital of France?")
    assert status == "miss" and original
    paraphrases = ("What's the capital city of France?", "Which city is the capital of France?")
    for paraphrase in paraphrases:
        answer, status = ask(semantic, paraphrase)
        assert (status, answer) == ("hit", original)
    for other in ("What is the capital of Germany?", "How do I bake bread?"):
        assert ask(semantic, other)[1] == "miss"
    hits = scrape(semantic.url).value("vllm_gateway_cache_semantic_hits_total", model="chat")
    assert hits == 2


def test_a_paraphrase_in_another_conversation_context_misses(semantic: Gateway) -> None:
    ask(semantic, "How do I reset my password?")
    assert ask(semantic, "How can I reset my password?")[1] == "hit"
    assert ask(semantic, "How can I reset my password?", system="Answer in French.")[1] == "miss"


def test_the_embedding_model_serves_its_own_requests_as_usual(semantic: Gateway) -> None:
    client = openai.OpenAI(base_url=semantic.base_url, api_key="x", max_retries=0)
    vector = client.embeddings.create(model="minilm", input="hello").data[0].embedding
    assert len(vector) == 384
