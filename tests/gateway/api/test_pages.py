"""The pages over HTTP: served from the package as they are (nothing rendered
by the server), with caching headers and conditional GETs, carried by the
wheel; and the console's operator endpoints (routing table, engine log tail)
with their access rules and no secret in what they show."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import pytest

from gateway.api.routes.pages import STATIC_DIR
from gateway.engines.logfile import PHASES
from tests.gateway.api.conftest import (
    ADMIN,
    ENGINE_SECRET,
    ENV_SECRET,
    GATEWAY_ENV_SECRET,
    MEMBER,
)
from tests.helpers import Gateway, project_copy, wheel_files


def get(gateway: Gateway, path: str, key: str | None = None, **headers: str) -> httpx.Response:
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    return httpx.get(gateway.url + path, headers=headers, timeout=10)


def referenced_files(text: str) -> set[str]:
    """The files a page or module loads: /static/... links and relative imports."""
    found = set(re.findall(r'"/static/([\w./-]+)"', text))
    found |= {f"js/{name}" for name in re.findall(r'from "\./([\w.-]+)"', text)}
    return found


@pytest.mark.parametrize(
    ("path", "file"),
    [("/", "playground.html"), ("/playground", "playground.html"), ("/console", "console.html")],
)
def test_pages_are_the_packaged_files_with_caching_headers(
    gateway: Gateway, path: str, file: str
) -> None:
    response = get(gateway, path)
    assert response.status_code == 200
    assert response.content == (STATIC_DIR / file).read_bytes()  # nothing rendered in
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["cache-control"] == "no-cache"
    assert re.fullmatch(r'"[0-9a-f]{24}"', response.headers["etag"])
    assert response.headers["last-modified"].endswith(" GMT")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "connect-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy


def test_every_file_the_pages_load_is_served_with_its_type(gateway: Gateway) -> None:
    types = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
    wanted = referenced_files(get(gateway, "/").text) | referenced_files(
        get(gateway, "/console").text
    )
    seen: set[str] = set()
    while wanted - seen:
        name = sorted(wanted - seen)[0]
        seen.add(name)
        response = get(gateway, f"/static/{name}")
        assert response.status_code == 200, name
        assert response.headers["content-type"].startswith(types[Path(name).suffix])
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.content == (STATIC_DIR / name).read_bytes()
        if name.endswith(".js"):
            wanted |= referenced_files(response.text)
    assert {"js/playground.js", "js/console.js", "js/markdown.js", "style.css"} <= seen


def test_nothing_is_fetched_from_elsewhere() -> None:
    for path in STATIC_DIR.rglob("*.*"):
        text = path.read_text()
        # No URL to another host in an attribute, an import or a url(): the pages work offline.
        assert not re.search(r"""(?:src|href|from|url)\s*[=(]?\s*["']?(?:https?:)?//""", text), path
        assert "innerHTML" not in text and "insertAdjacentHTML" not in text, path


def test_the_console_knows_every_loading_phase_of_an_engine() -> None:
    console = (STATIC_DIR / "js" / "console.js").read_text()
    listed = re.search(r"const PHASES = \[(.*?)\];", console, re.S)
    assert listed is not None
    shown = re.findall(r'"([^"]+)"', listed.group(1))
    # Each phase the supervisor reports, up to its first variable part, in order.
    reported = ["launching"] + [text.split("{")[0].strip() for _, text in PHASES]
    assert shown == reported


def test_conditional_gets_answer_304(gateway: Gateway) -> None:
    first = get(gateway, "/static/js/playground.js")
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    again = get(gateway, "/static/js/playground.js", **{"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == etag and again.headers["cache-control"] == "no-cache"
    listed = get(gateway, "/static/js/playground.js", **{"If-None-Match": f'"other", W/{etag}'})
    assert listed.status_code == 304
    assert (
        get(gateway, "/static/js/playground.js", **{"If-Modified-Since": modified}).status_code
        == 304
    )
    old = "Mon, 01 Jan 2001 00:00:00 GMT"
    assert get(gateway, "/static/js/playground.js", **{"If-Modified-Since": old}).status_code == 200
    # A changed file has another tag: the browser's copy is stale, the body comes.
    stale = get(gateway, "/static/js/playground.js", **{"If-None-Match": '"0000"'})
    assert stale.status_code == 200 and stale.content == first.content
    head = httpx.head(gateway.url + "/console", timeout=10)
    assert head.status_code == 200 and head.headers["etag"] and head.content == b""


@pytest.mark.parametrize("path", ["/static/nope.js", "/static/../pyproject.toml", "/static/"])
def test_only_packaged_files_are_served(gateway: Gateway, path: str) -> None:
    response = httpx.get(gateway.url + path, timeout=10)
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_the_wheel_carries_the_pages(tmp_path: Path) -> None:
    names = wheel_files(project_copy(tmp_path / "source"), tmp_path / "dist")
    packaged = {
        f"gateway/api/static/{p.relative_to(STATIC_DIR).as_posix()}"
        for p in STATIC_DIR.rglob("*.*")
    }
    assert packaged and packaged <= names


# ---- the operator endpoints --------------------------------------------------------


def test_the_routing_table_is_open_on_a_gateway_without_keys(gateway: Gateway) -> None:
    payload = get(gateway, "/v1/gateway/routing").json()
    chat = next(model for model in payload["data"] if model["id"] == "chat")
    assert chat["strategy"] == "weighted" and chat["fallbacks"] == []
    assert chat["targets"] == [
        {"id": "alpha/m1", "model": "m1", "weight": 1.0, "tier": 1, "available": True}
    ]


def test_the_routing_table_needs_an_admin_key_on_a_gateway_with_keys(
    keyed_gateway: Gateway,
) -> None:
    assert get(keyed_gateway, "/v1/gateway/routing").status_code == 401
    refused = get(keyed_gateway, "/v1/gateway/routing", MEMBER)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "admin_only"
    models = {m["id"]: m for m in get(keyed_gateway, "/v1/gateway/routing", ADMIN).json()["data"]}
    assert models["guarded"]["targets"][0]["id"] == "engine/guarded"
    assert models["guarded"]["targets"][0]["available"] is False


def engine_failed(gateway: Gateway) -> bool:
    engines = httpx.get(gateway.url + "/ready", timeout=10).json()["engines"]
    return bool(engines["guarded"]["state"] == "failed")


def test_an_engine_log_tail_is_for_admins_with_secrets_masked(keyed_gateway: Gateway) -> None:
    deadline = time.monotonic() + 120  # vLLM's flags are read once (cached on disk)
    while not engine_failed(keyed_gateway):
        assert time.monotonic() < deadline, keyed_gateway.log()[-3000:]
        time.sleep(0.2)
    path = "/v1/gateway/engines/guarded/log"
    assert get(keyed_gateway, path, MEMBER).status_code == 403
    response = get(keyed_gateway, path + "?lines=4", ADMIN)
    assert response.status_code == 200
    payload = response.json()
    assert payload["object"] == "gateway.engine_log" and len(payload["lines"]) == 4
    text = response.text
    for secret in (ENGINE_SECRET, ENV_SECRET, GATEWAY_ENV_SECRET):
        assert secret not in text
    assert payload["lines"][0] == "usage: vllm serve --api-key *** --port 8000"
    assert payload["lines"][-1] == "INFO an ordinary line"
    everything = get(keyed_gateway, path, ADMIN).json()["lines"]
    assert everything[0] == "INFO non-default args: {'model': '/m', 'api_key': '***'}"


@pytest.mark.parametrize("lines", ["0", "abc", "1001", "-3"])
def test_a_bad_line_count_is_a_400_naming_it(keyed_gateway: Gateway, lines: str) -> None:
    response = get(keyed_gateway, f"/v1/gateway/engines/guarded/log?lines={lines}", ADMIN)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "lines"


def test_an_unknown_engine_is_a_404(keyed_gateway: Gateway) -> None:
    response = get(keyed_gateway, "/v1/gateway/engines/nope/log", ADMIN)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "engine_not_found"


def test_engine_logs_are_off_without_admin_keys(gateway: Gateway) -> None:
    response = get(gateway, "/v1/gateway/engines/any/log")
    assert response.status_code == 403
    assert "no auth.admin_keys" in response.json()["error"]["message"]
