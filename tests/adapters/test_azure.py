"""``kind: azure`` end to end: the official OpenAI SDK talks to the gateway,
which talks to a fake Azure OpenAI resource that checks deployment URLs,
api-version and the key the way Azure does."""

from __future__ import annotations

import httpx
import openai
import pytest
from openai import OpenAI

from tests.adapters.support import KEYS, FakeVendor
from tests.helpers import Gateway

HELLO = [{"role": "user", "content": "hello azure"}]


def test_chat_goes_to_the_deployment_url_with_api_version_and_key(
    client: OpenAI, azure: FakeVendor
) -> None:
    completion = client.chat.completions.create(model="azure", messages=HELLO)
    assert completion.model == "azure"
    assert completion.choices[0].message.content == "azure: hello azure"
    [received] = azure.requests()
    assert received["path"] == "/openai/deployments/gpt-4o-prod/chat/completions"
    assert received["headers"]["api-key"] == KEYS["AZURE_TEST_KEY"]
    assert "authorization" not in received["headers"]
    assert received["body"]["messages"] == HELLO


def test_streaming_passes_through(client: OpenAI, azure: FakeVendor) -> None:
    chunks = list(
        client.chat.completions.create(
            model="azure", messages=HELLO, stream=True, stream_options={"include_usage": True}
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == (
        "azure: hello azure"
    )
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 3


@pytest.mark.parametrize(
    ("model", "path", "header"),
    [
        ("azure-bearer", "/openai/deployments/gpt-4o-prod/chat/completions", "authorization"),
        ("azure-v1", "/openai/v1/chat/completions", "api-key"),
    ],
)
def test_bearer_auth_and_the_v1_api(
    client: OpenAI, azure: FakeVendor, model: str, path: str, header: str
) -> None:
    completion = client.chat.completions.create(model=model, messages=HELLO)
    assert completion.choices[0].message.content == "azure: hello azure"
    [received] = azure.requests()
    assert received["path"] == path
    assert KEYS["AZURE_TEST_KEY"] in received["headers"][header]
    assert received["body"]["model"] == "gpt-4o-prod"


def test_embeddings(client: OpenAI, azure: FakeVendor) -> None:
    result = client.embeddings.create(model="azure-embed", input=["a", "b"])
    assert [d.index for d in result.data] == [0, 1]
    assert azure.requests()[-1]["path"] == "/openai/deployments/embed-prod/embeddings"


def test_an_unknown_deployment_is_azures_404(client: OpenAI, azure: FakeVendor) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="azure-missing", messages=HELLO)
    assert "deployment for this resource does not exist" in caught.value.message


def test_azure_rate_limits_keep_retry_after(vendor_gateway: Gateway, azure: FakeVendor) -> None:
    azure.faults({"status": 429, "retry_after": 45})
    response = httpx.post(
        vendor_gateway.base_url + "/chat/completions",
        json={"model": "azure-limited", "messages": HELLO},
        timeout=10,
    )
    assert response.status_code == 429 and response.headers["retry-after"] == "45"
