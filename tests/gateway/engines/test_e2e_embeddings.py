"""End to end: the embedding engine family (vLLM's pooling runner) serving the
real all-MiniLM-L6-v2 weights as ``minilm``, through the gateway with the SDK."""

from __future__ import annotations

import base64
import math
import struct

import openai
import pytest

from tests.engine_gateway import EngineGateway, ready_payload

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def client(engines_gateway: EngineGateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=engines_gateway.base_url, api_key="unused", max_retries=0)


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


def test_the_embedding_engine_is_ready_with_its_family(engines_gateway: EngineGateway) -> None:
    payload = ready_payload(engines_gateway.gateway)
    assert payload["engines"]["minilm"]["state"] == "ready"
    assert payload["engines"]["minilm"]["family"] == "embedding"
    assert payload["models"]["minilm"]["ready"] is True


def test_embeddings_are_real_sentence_vectors(client: openai.OpenAI) -> None:
    texts = [
        "How do I reset my password?",
        "How can I reset my password?",
        "The capital of France is Paris.",
    ]
    result = client.embeddings.create(model="minilm", input=texts)
    assert result.model == "minilm"
    assert [d.index for d in result.data] == [0, 1, 2]
    vectors = [d.embedding for d in result.data]
    assert all(len(v) == 384 for v in vectors)
    # all-MiniLM-L6-v2 normalizes its output.
    assert all(abs(math.sqrt(sum(x * x for x in v)) - 1) < 1e-3 for v in vectors)
    assert cosine(vectors[0], vectors[1]) > 0.95  # paraphrases
    assert cosine(vectors[0], vectors[2]) < 0.3  # unrelated
    assert result.usage.prompt_tokens > 0


def test_base64_encoding_decodes_to_the_float_vector(client: openai.OpenAI) -> None:
    text = "A sentence to embed."
    floats = client.embeddings.create(model="minilm", input=text).data[0].embedding
    raw = client.embeddings.with_raw_response.create(
        model="minilm", input=text, encoding_format="base64"
    ).http_response.json()["data"][0]["embedding"]
    decoded = struct.unpack(f"<{len(floats)}f", base64.b64decode(raw))
    assert max(abs(a - b) for a, b in zip(decoded, floats, strict=True)) < 1e-5


def test_a_chat_request_to_the_embedding_model_is_refused_cleanly(client: openai.OpenAI) -> None:
    with pytest.raises(openai.APIStatusError) as refused:
        client.chat.completions.create(
            model="minilm", messages=[{"role": "user", "content": "Hi"}], max_tokens=4
        )
    assert 400 <= refused.value.status_code < 500
    assert refused.value.body is not None
