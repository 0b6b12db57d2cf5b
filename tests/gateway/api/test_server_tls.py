"""``serve --ssl-certfile/--ssl-keyfile``: the gateway serves HTTPS itself,
driven through the OpenAI SDK with the test's own CA trusted."""

from __future__ import annotations

import ssl
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
import yaml
from openai import OpenAI

from tests.certs import ServerCertificate, issue
from tests.helpers import FakeUpstream, ServerProcess, free_port


class HttpsGateway(ServerProcess):
    """``vllm-gateway serve`` with TLS; ready once /health answers over HTTPS."""

    def __init__(self, tmp: Path, config: dict, certificate: ServerCertificate) -> None:
        port = free_port()
        self.context = certificate.client_context()
        self.https_url = f"https://localhost:{port}"
        config_path = tmp / "tls-gateway.yaml"
        config_path.write_text(yaml.safe_dump(config))
        args = [
            sys.executable,
            "-m",
            "gateway",
            "serve",
            "--config",
            str(config_path),
            "--port",
            str(port),
            "--ssl-certfile",
            str(certificate.cert),
            "--ssl-keyfile",
            str(certificate.key),
        ]
        super().__init__(args, port, tmp / "tls-gateway.log")

    def _wait_ready(self, path: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited:\n{self.log()}")
            try:
                with urllib.request.urlopen(self.https_url + path, context=self.context, timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"gateway not ready over HTTPS:\n{self.log()}")


@pytest.fixture
def https_gateway(tmp_path: Path, upstream: FakeUpstream) -> Iterator[HttpsGateway]:
    config = {
        "providers": {"alpha": {"kind": "openai", "base_url": upstream.base_url}},
        "models": {"chat": {"targets": [{"provider": "alpha", "model": "m1"}]}},
    }
    gateway = HttpsGateway(tmp_path, config, issue(tmp_path))
    yield gateway
    gateway.stop()


def sdk(gateway: HttpsGateway, context: ssl.SSLContext) -> OpenAI:
    return OpenAI(
        base_url=gateway.https_url + "/v1",
        api_key="any",
        max_retries=0,
        http_client=httpx.Client(verify=context),
    )


def test_openai_sdk_over_https(https_gateway: HttpsGateway) -> None:
    client = sdk(https_gateway, https_gateway.context)
    answer = client.chat.completions.create(
        model="chat", messages=[{"role": "user", "content": "over tls"}]
    )
    assert answer.choices[0].message.content == "alpha: over tls"
    stream = client.chat.completions.create(
        model="chat", messages=[{"role": "user", "content": "streamed over tls"}], stream=True
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "alpha: streamed over tls"


def test_untrusted_and_plain_http_clients_are_refused(https_gateway: HttpsGateway) -> None:
    untrusted = sdk(https_gateway, ssl.create_default_context())  # the system CAs only
    with pytest.raises(openai.APIConnectionError) as refused:
        untrusted.models.list()
    assert isinstance(refused.value.__cause__, httpx.ConnectError)
    assert "CERTIFICATE_VERIFY_FAILED" in str(refused.value.__cause__)
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://localhost:{https_gateway.port}/health", timeout=5)
