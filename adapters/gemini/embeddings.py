"""OpenAI embeddings <-> Gemini's embedContent / batchEmbedContents, as pure functions."""

from __future__ import annotations

import base64
import struct

from adapters.errors import InvalidRequestError
from adapters.gemini.format import PROVIDER, GeminiOptions, model_path
from adapters.translation import Body, FieldPolicy


def to_embed_request(body: Body, options: GeminiOptions) -> tuple[str, Body]:
    """``(method, request)``: embedContent for one text, batchEmbedContents for a list."""
    policy = FieldPolicy(PROVIDER, options.drop_unsupported)
    policy.check_fields(body, frozenset({"model", "input", "dimensions", "encoding_format"}), {})
    texts = body["input"]
    if not isinstance(texts, str) and not all(isinstance(text, str) for text in texts):
        raise InvalidRequestError(
            f"'input' as token ids is not supported by the {PROVIDER} provider; send text.",
            param="input",
            code="unsupported_parameter",
        )
    extra = {"outputDimensionality": body["dimensions"]} if body.get("dimensions") else {}
    if isinstance(texts, str):
        return "embedContent", {"content": {"parts": [{"text": texts}]}, **extra}
    model = model_path(str(body["model"]))
    requests = [{"model": model, "content": {"parts": [{"text": t}]}, **extra} for t in texts]
    return "batchEmbedContents", {"requests": requests}


def from_embed_response(result: Body, model: str, encoding_format: str | None) -> Body:
    if "embedding" in result:
        vectors = [result["embedding"]["values"]]
    else:
        vectors = [item["values"] for item in result.get("embeddings") or []]
    data = [
        {"object": "embedding", "index": index, "embedding": _encode(vector, encoding_format)}
        for index, vector in enumerate(vectors)
    ]
    return {"object": "list", "data": data, "model": model}


def _encode(vector: list[float], encoding_format: str | None) -> list[float] | str:
    if encoding_format != "base64":
        return vector
    # OpenAI's base64 format: little-endian float32, as its SDK decodes it.
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
