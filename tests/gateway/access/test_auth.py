"""API keys and JWTs, end to end through a gateway process and the openai SDK:
401/403 in OpenAI's error shape, model access, admin endpoints, no secret leaks."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import openai
import pytest
from openai import OpenAI

from tests.gateway.conftest import auth_config, sha256_hex
from tests.helpers import FakeUpstream, Gateway

TEAM_KEY = "sk-team-" + secrets.token_hex(12)
CI_KEY = "sk-ci-" + secrets.token_hex(12)
OLD_KEY = "sk-old-" + secrets.token_hex(12)
ADMIN_KEY = "sk-admin-" + secrets.token_hex(12)
JWT_SECRET = secrets.token_hex(32)
WRONG_KEY = "sk-wrong-" + secrets.token_hex(12)
USER = [{"role": "user", "content": "hello there"}]


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory, upstream: FakeUpstream) -> Iterator[Gateway]:
    tmp = tmp_path_factory.mktemp("auth")
    auth = {
        "keys": [
            {
                "name": "team-a",
                "key": "${TEAM_A_KEY}",
                "models": ["chat", "qwen*"],
                "rpm": 60,
                "tpm": 100000,
                "metadata": {"owner": "team a"},
            },
            {"name": "ci", "key_sha256": sha256_hex(CI_KEY), "models": ["*"]},
            {"name": "old", "key": "${OLD_KEY}", "expires": "2020-01-01"},
        ],
        "admin_keys": [{"name": "ops", "key": "${ADMIN_KEY}"}],
        "jwt": {
            "algorithm": "HS256",
            "secret": "${JWT_SECRET}",
            "audience": "vllm-gateway",
            "leeway": 5,
        },
    }
    env = {"TEAM_A_KEY": TEAM_KEY, "OLD_KEY": OLD_KEY, "ADMIN_KEY": ADMIN_KEY}
    server = Gateway(
        tmp, auth_config(upstream, tmp / "access.log", auth), env={**env, "JWT_SECRET": JWT_SECRET}
    )
    server.access_log = tmp / "access.log"  # type: ignore[attr-defined]
    yield server
    server.stop()


def client(gateway: Gateway, key: str) -> OpenAI:
    return OpenAI(base_url=gateway.base_url, api_key=key, max_retries=0)


def token(**claims: Any) -> str:
    now = int(time.time())
    payload = {"sub": "alice", "aud": "vllm-gateway", "iat": now, "exp": now + 600, **claims}
    return jwt.encode(payload, JWT_SECRET, algorithm="HS256")


def assert_openai_error(exc: openai.APIStatusError, status: int, code: str | None) -> None:
    assert exc.status_code == status
    body = exc.response.json()
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]


def test_valid_key_calls_allowed_models_by_name_and_glob(
    secured: Gateway, upstream: FakeUpstream
) -> None:
    upstream.reset()
    team = client(secured, TEAM_KEY)
    assert team.chat.completions.create(model="chat", messages=USER).model == "chat"
    assert TEAM_KEY not in str(upstream.requests()[-1]["headers"])  # never sent upstream
    assert team.chat.completions.create(model="qwen-7b", messages=USER).model == "qwen-7b"
    ci = client(secured, CI_KEY)  # configured by its sha256 only
    assert ci.chat.completions.create(model="other", messages=USER).model == "other"


def test_missing_key_is_401(secured: Gateway) -> None:
    reply = httpx.post(
        secured.base_url + "/chat/completions", json={"model": "chat", "messages": USER}
    )
    assert reply.status_code == 401
    error = reply.json()["error"]
    assert error["code"] == "invalid_api_key" and error["type"] == "authentication_error"
    assert "didn't provide an API key" in error["message"]


def test_wrong_key_is_401(secured: Gateway) -> None:
    with pytest.raises(openai.AuthenticationError) as caught:
        client(secured, WRONG_KEY).chat.completions.create(model="chat", messages=USER)
    assert_openai_error(caught.value, 401, "invalid_api_key")
    assert caught.value.message.endswith("Incorrect API key provided.")


def test_expired_key_is_401(secured: Gateway) -> None:
    with pytest.raises(openai.AuthenticationError) as caught:
        client(secured, OLD_KEY).chat.completions.create(model="chat", messages=USER)
    assert_openai_error(caught.value, 401, "invalid_api_key")
    assert "'old' has expired" in caught.value.message


def test_model_not_allowed_is_403_naming_the_model(secured: Gateway) -> None:
    with pytest.raises(openai.PermissionDeniedError) as caught:
        client(secured, TEAM_KEY).chat.completions.create(model="other", messages=USER)
    assert_openai_error(caught.value, 403, "model_not_allowed")
    body = caught.value.response.json()["error"]
    assert body["param"] == "model" and "'other'" in body["message"]


def test_x_api_key_header_and_models_listing_filtered(secured: Gateway) -> None:
    reply = httpx.get(secured.base_url + "/models", headers={"x-api-key": TEAM_KEY})
    assert reply.status_code == 200
    assert sorted(m["id"] for m in reply.json()["data"]) == ["chat", "qwen-7b"]
    everything = client(secured, CI_KEY).models.list()
    assert sorted(m.id for m in everything) == ["chat", "limited", "other", "qwen-7b"]


def test_health_stays_open(secured: Gateway) -> None:
    assert httpx.get(secured.url + "/health").status_code == 200


def test_jwt_valid_with_model_access_claim(secured: Gateway) -> None:
    alice = client(secured, token(model_access=["chat"]))
    assert alice.chat.completions.create(model="chat", messages=USER).model == "chat"
    with pytest.raises(openai.PermissionDeniedError) as caught:
        alice.chat.completions.create(model="other", messages=USER)
    assert "token 'jwt:alice'" in caught.value.message


@pytest.mark.parametrize(
    ("make_token", "message"),
    [
        (lambda: token(exp=int(time.time()) - 60), "The token has expired."),
        (lambda: token(aud="someone-else"), "The token's audience is not this gateway."),
        (
            lambda: jwt.encode(
                {"sub": "x", "aud": "vllm-gateway", "exp": int(time.time()) + 60},
                "not-the-secret-" + secrets.token_hex(16),
                algorithm="HS256",
            ),
            "The token's signature is invalid.",
        ),
        (lambda: token(nbf=int(time.time()) + 600), "The token is not valid yet (nbf)."),
        (
            lambda: jwt.encode({"sub": "x", "aud": "vllm-gateway"}, JWT_SECRET, "HS256"),
            "The token has no 'exp' claim.",
        ),
    ],
    ids=["expired", "wrong-audience", "wrong-signature", "not-yet-valid", "no-exp"],
)
def test_jwt_rejected(secured: Gateway, make_token: Any, message: str) -> None:
    with pytest.raises(openai.AuthenticationError) as caught:
        client(secured, make_token()).chat.completions.create(model="chat", messages=USER)
    assert_openai_error(caught.value, 401, "invalid_api_key")
    assert caught.value.response.json()["error"]["message"] == message


def test_jwt_leeway_accepts_small_clock_skew(secured: Gateway) -> None:
    skewed = client(secured, token(exp=int(time.time()) - 2))  # leeway is 5 s
    assert skewed.chat.completions.create(model="chat", messages=USER).model == "chat"


def test_jwt_rate_limit_claim_limits_the_subject(secured: Gateway) -> None:
    bob = token(sub="bob", rate_limit={"rpm": 1}, data_retention="none")
    first = client(secured, bob).chat.completions.with_raw_response.create(
        model="chat", messages=USER
    )
    assert first.headers["x-ratelimit-limit-requests"] == "1"
    # Another token of the same subject shares the subject's counters.
    again = token(sub="bob", rate_limit={"rpm": 1}, iat=int(time.time()) - 1)
    with pytest.raises(openai.RateLimitError):
        client(secured, again).chat.completions.create(model="chat", messages=USER)
    me = httpx.get(
        secured.base_url + "/gateway/keys/me", headers={"Authorization": f"Bearer {bob}"}
    ).json()
    assert me["name"] == "jwt:bob" and me["data_retention"] == "none"
    assert me["limits"]["rpm"] == 1 and me["usage"]["requests"] == 1


def test_keys_me_shows_own_limits_and_usage_without_secret(secured: Gateway) -> None:
    headers = {"Authorization": f"Bearer {TEAM_KEY}"}
    before = httpx.get(secured.base_url + "/gateway/keys/me", headers=headers).json()
    reply = client(secured, TEAM_KEY).chat.completions.create(model="chat", messages=USER)
    after = httpx.get(secured.base_url + "/gateway/keys/me", headers=headers)
    me = after.json()
    assert me["name"] == "team-a" and me["models"] == ["chat", "qwen*"]
    assert me["limits"]["rpm"] == 60 and me["limits"]["tpm"] == 100000
    assert me["metadata"] == {"owner": "team a"}
    assert me["usage"]["requests"] == before["usage"]["requests"] + 1
    assert reply.usage is not None
    assert me["usage"]["tokens"] == before["usage"]["tokens"] + reply.usage.total_tokens
    assert TEAM_KEY not in after.text and sha256_hex(TEAM_KEY) not in after.text


def test_admin_endpoints_need_an_admin_key(secured: Gateway) -> None:
    url = secured.base_url + "/gateway/keys"
    team = httpx.get(url, headers={"Authorization": f"Bearer {TEAM_KEY}"})
    assert team.status_code == 403 and team.json()["error"]["code"] == "admin_only"
    assert httpx.get(url).status_code == 401
    reload = httpx.post(
        secured.base_url + "/gateway/reload", headers={"Authorization": f"Bearer {TEAM_KEY}"}
    )
    assert reload.status_code == 403
    listing = httpx.get(url, headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    assert listing.status_code == 200
    names = {k["name"]: k for k in listing.json()["data"]}
    assert set(names) == {"team-a", "ci", "old", "ops"}
    assert names["old"]["expires"].startswith("2020-01-01T00:00:00")
    assert {"requests", "tokens", "in_flight"} <= set(names["team-a"]["usage"])
    for secret in (TEAM_KEY, CI_KEY, OLD_KEY, ADMIN_KEY, sha256_hex(TEAM_KEY), sha256_hex(CI_KEY)):
        assert secret not in listing.text


def test_targets_are_for_admins_once_keys_are_configured(
    secured: Gateway, gateway: Gateway
) -> None:
    url = secured.base_url + "/gateway/targets"
    assert httpx.get(url).status_code == 401
    team = httpx.get(url, headers={"Authorization": f"Bearer {TEAM_KEY}"})
    assert team.status_code == 403 and team.json()["error"]["code"] == "admin_only"
    admin = httpx.get(url, headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    assert admin.status_code == 200 and admin.json()["data"][0]["id"] == "alpha/m1"
    # An open gateway (no keys) shows them to anyone, as its models.
    assert httpx.get(gateway.base_url + "/gateway/targets").status_code == 200


def test_admin_key_cannot_call_models(secured: Gateway) -> None:
    with pytest.raises(openai.PermissionDeniedError):
        client(secured, ADMIN_KEY).chat.completions.create(model="chat", messages=USER)


def test_secrets_never_reach_logs_or_error_bodies(secured: Gateway) -> None:
    presented = [TEAM_KEY, WRONG_KEY, OLD_KEY, CI_KEY, token(), token(exp=1)]
    bodies = []
    for key in presented:
        for path in ("/chat/completions", "/embeddings"):
            reply = httpx.post(
                secured.base_url + path,
                json={"model": "other", "messages": USER, "input": "x"},
                headers={"Authorization": f"Bearer {key}"},
            )
            bodies.append(reply.text)
    assert any('"code":"invalid_api_key"' in b for b in bodies)
    time.sleep(0.2)  # let the access log lines land
    logs = secured.log() + Path(secured.access_log).read_text()  # type: ignore[attr-defined]
    assert '"key_name":"team-a"' in logs  # the key is named in the access log...
    for secret in [*presented, ADMIN_KEY, JWT_SECRET]:
        assert secret not in logs  # ...but no secret is
        assert all(secret not in body for body in bodies)


def test_open_gateway_warns_loudly(gateway: Gateway) -> None:
    assert "AUTH IS OFF" in gateway.log()


def test_keys_file_adds_keys(tmp_path: Path, upstream: FakeUpstream) -> None:
    file_key = "sk-file-" + secrets.token_hex(8)
    (tmp_path / "keys.yaml").write_text(
        f"- {{name: from-file, key_sha256: {sha256_hex(file_key)}, models: [chat]}}\n"
    )
    auth = {"keys": [{"name": "inline", "key": "${INLINE}"}], "keys_file": "keys.yaml"}
    server = Gateway(tmp_path, auth_config(upstream, tmp_path / "a.log", auth), env={"INLINE": "x"})
    try:
        reply = client(server, file_key).chat.completions.create(model="chat", messages=USER)
        assert reply.model == "chat"
        with pytest.raises(openai.PermissionDeniedError):
            client(server, file_key).chat.completions.create(model="other", messages=USER)
    finally:
        server.stop()
