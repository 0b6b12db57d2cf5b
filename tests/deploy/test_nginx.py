"""deploy/nginx/vllm-gateway.conf, run by a real nginx in front of a real
gateway: TLS terminated with the test's certificate, the OpenAI SDK on the
outside, and streamed chunks arriving as they are produced (no buffering)."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from openai import OpenAI

from tests.certs import ServerCertificate, issue
from tests.helpers import ROOT, FakeUpstream, Gateway, free_port

SITE = ROOT / "deploy" / "nginx" / "vllm-gateway.conf"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"  # Debian's nginx-light (.ci/run installs it)


def site_for_test(gateway: Gateway, certificate: ServerCertificate, tls: int, plain: int) -> str:
    """The example config as shipped, aimed at this test's gateway, ports and certificate."""
    text = SITE.read_text()
    replacements = {
        "server 127.0.0.1:8000;": f"server 127.0.0.1:{gateway.port};",
        "listen 443 ssl;": f"listen 127.0.0.1:{tls} ssl;",
        "listen 80;": f"listen 127.0.0.1:{plain};",
        "/etc/nginx/tls/fullchain.pem": str(certificate.cert),
        "/etc/nginx/tls/privkey.pem": str(certificate.key),
    }
    for old, new in replacements.items():
        assert text.count(old) == 1, f"the example no longer has {old!r}"
        text = text.replace(old, new)
    return text


def main_config(prefix: Path, site: Path) -> str:
    temp = {name: prefix / name for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
    for path in temp.values():
        path.mkdir()
    return f"""
daemon off;
master_process off;
pid {prefix / "nginx.pid"};
error_log {prefix / "error.log"} info;
events {{}}
http {{
    access_log off;
    client_body_temp_path {temp["body"]};
    proxy_temp_path {temp["proxy"]};
    fastcgi_temp_path {temp["fastcgi"]};
    uwsgi_temp_path {temp["uwsgi"]};
    scgi_temp_path {temp["scgi"]};
    include {site};
}}
"""


class Nginx:
    def __init__(self, prefix: Path, config: Path, port: int) -> None:
        check = subprocess.run(
            [NGINX, "-t", "-p", str(prefix), "-c", str(config)], capture_output=True, text=True
        )
        assert check.returncode == 0, check.stderr
        self.proc = subprocess.Popen(
            [NGINX, "-p", str(prefix), "-c", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                assert self.proc.poll() is None and time.monotonic() < deadline, "nginx is down"
                time.sleep(0.05)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture
def proxied(tmp_path: Path, upstream: FakeUpstream) -> Iterator[tuple[str, ServerCertificate, int]]:
    config = {
        "providers": {"alpha": {"kind": "openai", "base_url": upstream.base_url}},
        "models": {"chat": {"targets": [{"provider": "alpha", "model": "m1"}]}},
    }
    gateway = Gateway(tmp_path, config)
    certificate = issue(tmp_path)
    tls, plain = free_port(), free_port()
    site = tmp_path / "site.conf"
    site.write_text(site_for_test(gateway, certificate, tls, plain))
    main = tmp_path / "nginx.conf"
    main.write_text(main_config(tmp_path, site))
    nginx = Nginx(tmp_path, main, tls)
    try:
        yield f"https://localhost:{tls}/v1", certificate, plain
    finally:
        nginx.stop()
        gateway.stop()


def test_tls_termination_streams_without_buffering(
    proxied: tuple[str, ServerCertificate, int],
) -> None:
    base_url, certificate, plain = proxied
    client = OpenAI(
        base_url=base_url,
        api_key="any",
        max_retries=0,
        http_client=httpx.Client(verify=certificate.client_context()),
    )
    raw = client.chat.completions.with_raw_response.create(
        model="chat", messages=[{"role": "user", "content": "through nginx"}]
    )
    assert raw.headers["X-Gateway-Target"] == "alpha/m1"
    assert raw.parse().choices[0].message.content == "alpha: through nginx"

    # The fake upstream sends one word every 0.2 s for "[slow]".
    slow = "[slow] one two three four five six seven"
    started = time.monotonic()
    arrivals = []
    text = ""
    stream = client.chat.completions.create(
        model="chat", messages=[{"role": "user", "content": slow}], stream=True
    )
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            text += chunk.choices[0].delta.content
            arrivals.append(time.monotonic() - started)
    assert text == f"alpha: {slow}"
    total = arrivals[-1]
    assert total > 1.2
    # Buffered, the chunks would arrive together at the end.
    assert arrivals[0] < total / 2, arrivals

    redirect = httpx.get(f"http://127.0.0.1:{plain}/v1/models", headers={"Host": "llm.test"})
    assert redirect.status_code == 301
    assert re.fullmatch(r"https://llm\.test/v1/models", redirect.headers["Location"])
