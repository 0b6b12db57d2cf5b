"""OpenAI embeddings <-> Gemini's embedContent / batchEmbedContents."""

from __future__ import annotations

import base64
import struct

import pytest

from adapters.errors import InvalidRequestError
from adapters.gemini.embeddings import from_embed_response, to_embed_request
from adapters.gemini.format import GeminiOptions

OPTIONS = GeminiOptions()


def test_embedding_requests() -> None:
    question = "What is the meaning of life?"
    body = {"model": "gemini-embedding-001", "input": question, "dimensions": 8}
    assert to_embed_request(body, OPTIONS) == (
        "embedContent",
        {"content": {"parts": [{"text": question}]}, "outputDimensionality": 8},
    )
    batch = {"model": "gemini-embedding-001", "input": ["a", "b"]}
    method, request = to_embed_request(batch, OPTIONS)
    assert method == "batchEmbedContents"
    assert request == {
        "requests": [
            {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "a"}]}},
            {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "b"}]}},
        ]
    }
    with pytest.raises(InvalidRequestError) as caught:
        to_embed_request({"model": "m", "input": [[1, 2, 3]]}, OPTIONS)
    assert caught.value.param == "input"


def test_embedding_responses_as_floats_and_base64() -> None:
    result = {"embeddings": [{"values": [0.25, -1.5]}, {"values": [3.0, 0.125]}]}
    floats = from_embed_response(result, "gemini-embedding-001", None)
    assert floats == {
        "object": "list",
        "data": [
            {"object": "embedding", "index": 0, "embedding": [0.25, -1.5]},
            {"object": "embedding", "index": 1, "embedding": [3.0, 0.125]},
        ],
        "model": "gemini-embedding-001",
    }
    encoded = from_embed_response({"embedding": {"values": [0.25, -1.5]}}, "m", "base64")
    raw = base64.b64decode(encoded["data"][0]["embedding"])
    assert struct.unpack("<2f", raw) == (0.25, -1.5)
