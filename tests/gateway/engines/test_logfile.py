"""Reading engine logs: loading phases, the engine pid, failures, and no secrets."""

from __future__ import annotations

from pathlib import Path

from gateway.engines.logfile import (
    LogFollower,
    last_error,
    progress_events,
    redact,
    redact_argv,
    secret_values,
    tail,
)
from gateway.engines.reaper import PID_MARKER

VLLM_LINES = [
    f"{PID_MARKER} 4242 (process group 4240)",
    "(APIServer pid=1) INFO 11-25 13:16:40 [model.py:733] Resolved architecture: Qwen2ForCausalLM",
    "(Worker pid=2) INFO 11-25 13:16:56 [cpu_model_runner.py:68] Starting to load model /m...",
    "(Worker pid=2) INFO 11-25 13:16:56 [default_loader.py:501] Loading weights took 0.01 seconds",
    "(EngineCore pid=3) INFO [core.py:402] init engine (profile, create kv cache, warmup model) "
    "took 3.01 s",
    "(APIServer pid=1) INFO 11-25 13:17:01 [entry.py:140] Starting vLLM server on http://x:1",
]


def test_progress_events_follow_vllm_loading() -> None:
    events = list(progress_events(VLLM_LINES))
    assert events[0] == ("pid", "4242")
    assert [value for kind, value in events[1:]] == [
        "resolved architecture Qwen2ForCausalLM",
        "loading weights",
        "weights loaded in 0.01s",
        "KV cache allocated, warm-up done in 3.01s",
        "starting the HTTP server",
    ]


def test_the_follower_returns_only_complete_new_lines(tmp_path: Path) -> None:
    log = tmp_path / "engine.log"
    log.write_text("old line\n")
    follower = LogFollower(log)
    follower.start_at_end()
    with log.open("a") as stream:
        stream.write("first\nsecond, half")
    assert follower.new_lines() == ["first"]
    with log.open("a") as stream:
        stream.write(" done\n")
    assert follower.new_lines() == ["second, half done"]


def test_last_error_finds_the_final_exception() -> None:
    lines = ["Traceback:", "ValueError: bad head size", "(APIServer) RuntimeError: init failed"]
    assert last_error(lines) == "RuntimeError: init failed"
    assert last_error(["all good"]) is None


def test_secrets_are_masked_in_log_tails_and_command_lines(tmp_path: Path) -> None:
    line = "non-default args: {'model': 'm', 'api_key': ['sk-123'], 'hf_token': 'hf_abc'}"
    assert redact(line) == "non-default args: {'model': 'm', 'api_key': '***', 'hf_token': '***'}"
    log = tmp_path / "engine.log"
    log.write_text("\n".join(["x"] * 50 + [line]) + "\n")
    lines = tail(log, lines=3)
    assert len(lines) == 3 and "sk-123" not in lines[-1]
    argv = ["vllm", "--api-key", "sk-1", "--hf-token=hf_2", "--port", "8"]
    assert redact_argv(argv) == ["vllm", "--api-key", "***", "--hf-token=***", "--port", "8"]


def test_secret_flags_in_free_text_are_masked_but_not_their_lookalikes() -> None:
    line = "usage: serve --api-key sk-1 --hf-token=hf_2 --tokenizer /tok --max-num-batched-tokens 8"
    assert redact(line) == (
        "usage: serve --api-key *** --hf-token=*** --tokenizer /tok --max-num-batched-tokens 8"
    )


def test_an_engines_secrets_are_its_secret_flags_and_environment_values(tmp_path: Path) -> None:
    extra_args = ["--api-key", "sk-flag-value", "--tokenizer", "/models/tok", "--x-token=tok-value"]
    env = {
        "HF_TOKEN": "hf_env_value",
        "OPENAI_API_KEY": "sk-openai-value",
        "PGPASSWORD": "pg-password",
        "TOKENIZERS_PARALLELISM": "false-ish",
        "SHORT_KEY": "1",
        "PATH": "/usr/bin",
    }
    secrets = secret_values(extra_args, env)
    assert secrets == sorted(
        ["sk-flag-value", "tok-value", "hf_env_value", "sk-openai-value", "pg-password"],
        key=len,
        reverse=True,
    )
    log = tmp_path / "engine.log"
    log.write_text("loaded /models/tok with hf_env_value\nsent sk-openai-value\n")
    assert tail(log, secrets=secrets) == ["loaded /models/tok with ***", "sent ***"]
