"""The auth: section of models.yaml: the issue's shape loads as written, and
mistakes are errors naming the YAML path (and file, and line), never a secret."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from adapters.errors import ConfigError
from gateway.config.loader import config_warnings, load_config, parse_config

MODELS = """\
providers:
  p: {kind: openai, base_url: http://127.0.0.1:9/v1}
models:
  chat: {targets: [{provider: p, model: m}]}
  qwen-7b: {targets: [{provider: p, model: m}]}
"""
CI_HASH = hashlib.sha256(b"test").hexdigest()
ISSUE_SHAPE = f"""\
redis_url: redis://127.0.0.1:6379/0     # optional: limits shared by all replicas
auth:
  keys:
    - {{name: team-a, key: "${{TEAM_A_KEY}}", models: ["chat", "qwen*"], rpm: 60, tpm: 100000}}
    - {{name: ci, key_sha256: {CI_HASH}, models: ["*"]}}
"""


def problems(
    text: str, env: dict[str, str] | None = None, source: str = "models.yaml"
) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, env={"TEAM_A_KEY": "sk-a"} if env is None else env, source=source)
    return caught.value.problems


def test_issue_shape_loads_as_written() -> None:
    config = parse_config(MODELS + ISSUE_SHAPE, env={"TEAM_A_KEY": "sk-team-a"})
    assert config.redis_url is not None
    assert config.redis_url.get_secret_value() == "redis://127.0.0.1:6379/0"
    assert config.auth is not None
    team, ci = config.auth.keys
    assert team.name == "team-a" and team.key is not None
    assert team.key.get_secret_value() == "sk-team-a"
    assert (team.models, team.rpm, team.tpm) == (["chat", "qwen*"], 60, 100000)
    assert ci.key_sha256 == CI_HASH and ci.models == ["*"] and ci.rpm is None
    assert ci.digest() == hashlib.sha256(b"test").digest()


def test_no_auth_is_an_open_gateway() -> None:
    assert parse_config(MODELS, env={}).auth is None


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            ("rpm: 60", "rpn: 60"),
            "auth.keys[0].rpn: unknown key 'rpn' (did you mean 'rpm'?), line 9",
        ),
        (("rpm: 60", "rpm: 0"), "auth.keys[0].rpm: Input should be greater than 0, line 9"),
        (("name: ci", "name: team-a"), "auth: Value error, two keys are named 'team-a', line 7"),
        (
            (f"key_sha256: {CI_HASH}", 'key: "x", key_sha256: ' + CI_HASH),
            "auth.keys[1]: Value error, a key gives exactly one of 'key' (e.g. ${ENV_VAR}) "
            "or 'key_sha256', line 10",
        ),
        (
            (f"key_sha256: {CI_HASH}", f"key_sha256: {'1' * 64}"),  # YAML reads an int
            "auth.keys[1].key_sha256: Value error, must be the 64 hex digits of a sha256, "
            "as a string (quote it), line 10",
        ),
        (
            (f"key_sha256: {CI_HASH}", 'key: ""'),
            "auth.keys[1]: Value error, 'key' is empty, line 10",
        ),
    ],
    ids=[
        "typo",
        "zero-rpm",
        "same-name",
        "two-secrets",
        "digits",
        "empty",
    ],
)
def test_key_mistakes_name_the_yaml_path(change: tuple[str, str], expected: str) -> None:
    assert problems(MODELS + ISSUE_SHAPE.replace(*change)) == [expected]


def test_shared_secret_error_names_keys_not_the_secret() -> None:
    text = MODELS + ISSUE_SHAPE.replace(f"key_sha256: {CI_HASH}", 'key: "${TEAM_A_KEY}"')
    (problem,) = problems(text, env={"TEAM_A_KEY": "sk-very-secret"})
    assert "keys 'team-a' and 'ci' share a secret" in problem
    assert "sk-very-secret" not in problem


def test_missing_key_env_var_names_it() -> None:
    assert problems(MODELS + ISSUE_SHAPE, env={}) == [
        "auth.keys[0].key: environment variable TEAM_A_KEY is not set, line 9"
    ]


def test_likely_mistakes_load_with_warnings() -> None:
    """The issue's own example (a shortened key_sha256, a key naming 'chat') must
    load as written; what cannot work is reported by `check` and at startup."""
    text = (
        MODELS.replace("chat:", "chat-2:")
        + ISSUE_SHAPE.replace(f"key_sha256: {CI_HASH}", "key_sha256: 9f86d081884c7d65...")
        + "  limits: {chta: {rpm: 5}}\n"
    )
    config = parse_config(text, env={"TEAM_A_KEY": "sk-a"})
    assert config_warnings(config) == [
        "auth.limits.chta: unknown model 'chta' (did you mean 'chat-2'?)",
        "auth.keys[0].models[0]: unknown model 'chat' (did you mean 'chat-2'?)",
        "key 'ci': key_sha256 is not the 64 hex digits of a sha256; this key can never match",
    ]
    assert config.auth is not None
    short = config.auth.keys[1]
    assert not short.usable
    # Unmatchable: no presented key's sha256 is 33 bytes long.
    assert len(short.digest()) == 33


def test_limits_jwt_and_rules_errors() -> None:
    text = MODELS + ISSUE_SHAPE + "  jwt: {algorithm: RS256, secret: abc}\n"
    assert problems(text) == [
        "auth.jwt: Value error, RS256 needs exactly one of 'public_key' or 'jwks_file', line 11"
    ]
    text = MODELS + ISSUE_SHAPE + "  requests: {max_tokens_policy: truncate}\n"
    assert problems(text)[0].startswith(
        "auth.requests.max_tokens_policy: Input should be 'clamp' or 'refuse'"
    )
    text = MODELS + ISSUE_SHAPE + "  redis_failure: fail_shut\n"
    assert problems(text)[0].startswith(
        "auth.redis_failure: Input should be 'fail_open' or 'fail_closed'"
    )


def test_jwt_key_files_are_checked_at_load(tmp_path: Path) -> None:
    config = tmp_path / "models.yaml"
    config.write_text(MODELS + ISSUE_SHAPE + "  jwt: {algorithm: ES256, public_key: idp.pem}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(config, env={"TEAM_A_KEY": "x"})
    assert caught.value.problems == [
        f"auth.jwt.public_key: cannot use {tmp_path / 'idp.pem'}: No such file or directory"
    ]
    (tmp_path / "idp.pem").write_text("not a key")
    with pytest.raises(ConfigError) as caught:
        load_config(config, env={"TEAM_A_KEY": "x"})
    assert caught.value.problems[0].startswith(
        f"auth.jwt.public_key: cannot use {tmp_path / 'idp.pem'}"
    )


def test_keys_file_errors_name_the_file_and_line(tmp_path: Path) -> None:
    config = tmp_path / "models.yaml"
    config.write_text(MODELS + ISSUE_SHAPE + "  keys_file: keys.yaml\n")
    keys = tmp_path / "keys.yaml"
    keys.write_text(f"- {{name: a, key_sha256: {'a' * 64}}}\n- {{name: b, key: x, tmp: 3}}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(config, env={"TEAM_A_KEY": "x"})
    assert caught.value.source == str(keys)
    assert caught.value.problems == ["[1].tmp: unknown key 'tmp' (did you mean 'tpm'?), line 2"]
    keys.write_text("- {name: team-a, key: y, models: [chat]}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(config, env={"TEAM_A_KEY": "x"})
    assert "two keys are named 'team-a'" in caught.value.problems[0]
    keys.write_text("- {name: c, key: '${C_KEY}', models: [qwen-7]}\n")
    loaded = load_config(config, env={"TEAM_A_KEY": "x", "C_KEY": "y"})
    assert config_warnings(loaded) == [
        "auth.keys[2].models[0]: unknown model 'qwen-7' (did you mean 'qwen-7b'?)"
    ]
    keys.write_text("- {name: c, key: '${C_KEY}', models: [qwen-7b]}\n")
    loaded = load_config(config, env={"TEAM_A_KEY": "x", "C_KEY": "y"})
    assert loaded.auth is not None and [k.name for k in loaded.auth.keys] == ["team-a", "ci", "c"]


def test_check_shows_access_rules_without_secrets(tmp_path: Path) -> None:
    config = tmp_path / "models.yaml"
    config.write_text(
        MODELS + ISSUE_SHAPE.replace("redis://127.0.0.1", "redis://:hunter2@127.0.0.1")
    )
    out = subprocess.run(
        [sys.executable, "-m", "gateway", "check", str(config)],
        capture_output=True,
        text=True,
        env={"TEAM_A_KEY": "sk-check-secret", "PATH": "/usr/bin:/bin"},
        check=True,
    ).stdout
    assert "key team-a: models=chat,qwen* limits={'rpm': 60, 'tpm': 100000}" in out
    assert "limits: shared through Redis" in out
    for secret in ("sk-check-secret", "hunter2", CI_HASH):
        assert secret not in out
