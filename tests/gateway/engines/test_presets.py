"""Engine entries of models.yaml -> vLLM command lines, environments and sampling defaults."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.config.schema import EngineConfig
from gateway.engines.presets import (
    PRESETS,
    SERVER_MODULE,
    build_command,
    default_sampling,
    engine_env,
)


def command_for(**fields: Any) -> list[str]:
    engine = EngineConfig.model_validate({"model": "/models/m", **fields})
    return build_command(engine, port=4321, python="/usr/bin/python3").argv


def flag_value(argv: list[str], flag: str) -> str | None:
    index = argv.index(flag)
    following = argv[index + 1] if index + 1 < len(argv) else None
    return None if following is None or following.startswith("--") else following


def test_the_command_starts_the_openai_server_on_loopback_and_the_given_port() -> None:
    argv = command_for()
    assert argv[:3] == ["/usr/bin/python3", "-m", SERVER_MODULE]
    assert flag_value(argv, "--model") == "/models/m"
    assert flag_value(argv, "--host") == "127.0.0.1"
    assert flag_value(argv, "--port") == "4321"


@pytest.mark.parametrize(
    ("family", "expected"),
    [
        ("deepseek-r1", {"--reasoning-parser": "deepseek_r1"}),
        ("deepseek-v3", {"--enable-auto-tool-choice": None, "--tool-call-parser": "deepseek_v3"}),
        ("llama3", {"--enable-auto-tool-choice": None, "--tool-call-parser": "llama3_json"}),
        ("qwen2", {"--enable-auto-tool-choice": None, "--tool-call-parser": "hermes"}),
        ("embedding", {"--runner": "pooling", "--convert": "embed"}),
    ],
)
def test_each_family_preset_adds_its_parser_flags(
    family: str, expected: dict[str, str | None]
) -> None:
    argv = command_for(family=family)
    for flag, value in expected.items():
        assert flag in argv
        assert flag_value(argv, flag) == value
    others = {"--reasoning-parser", "--tool-call-parser"} - set(expected)
    assert not others.intersection(argv)


def test_no_family_means_no_parser_flags() -> None:
    argv = command_for()
    assert "--tool-call-parser" not in argv and "--reasoning-parser" not in argv


def test_typed_fields_become_vllm_flags() -> None:
    argv = command_for(
        served_name="chat",
        tensor_parallel_size=2,
        pipeline_parallel_size=1,
        max_model_len=4096,
        gpu_memory_utilization=0.5,
        dtype="bfloat16",
        quantization="awq",
        kv_cache_dtype="fp8",
        max_num_seqs=64,
        max_num_batched_tokens=8192,
        chat_template="/t.jinja",
    )
    assert flag_value(argv, "--served-model-name") == "chat"
    assert flag_value(argv, "--tensor-parallel-size") == "2"
    assert flag_value(argv, "--pipeline-parallel-size") == "1"
    assert flag_value(argv, "--max-model-len") == "4096"
    assert flag_value(argv, "--gpu-memory-utilization") == "0.5"
    assert flag_value(argv, "--dtype") == "bfloat16"
    assert flag_value(argv, "--quantization") == "awq"
    assert flag_value(argv, "--kv-cache-dtype") == "fp8"
    assert flag_value(argv, "--max-num-seqs") == "64"
    assert flag_value(argv, "--max-num-batched-tokens") == "8192"
    assert flag_value(argv, "--chat-template") == "/t.jinja"


def test_boolean_fields_use_the_flag_or_its_negation() -> None:
    on = command_for(enable_prefix_caching=True, enforce_eager=True)
    off = command_for(enable_prefix_caching=False, enforce_eager=False)
    assert "--enable-prefix-caching" in on and "--enforce-eager" in on
    assert "--no-enable-prefix-caching" in off and "--no-enforce-eager" in off
    assert "--enable-prefix-caching" not in off


def test_extra_args_are_appended_verbatim() -> None:
    argv = command_for(extra_args=["--max-num-seqs", "8", "--seed=3"])
    assert argv[-3:] == ["--max-num-seqs", "8", "--seed=3"]


def test_an_engine_flag_overrides_the_preset_flag() -> None:
    argv = command_for(family="qwen2", extra_args=["--tool-call-parser", "pythonic"])
    assert argv.count("--tool-call-parser") == 1
    assert flag_value(argv, "--tool-call-parser") == "pythonic"
    assert "--enable-auto-tool-choice" in argv  # the rest of the preset stays


def test_a_negated_flag_in_extra_args_drops_the_preset_switch() -> None:
    argv = command_for(family="llama3", extra_args=["--no-enable-auto-tool-choice"])
    assert "--enable-auto-tool-choice" not in argv
    assert "--no-enable-auto-tool-choice" in argv


def test_flag_sources_name_where_each_flag_came_from() -> None:
    engine = EngineConfig(model="m", family="qwen2", max_model_len=512, extra_args=["--seed", "1"])
    sources = {use.flag: use.source for use in build_command(engine, port=1, python="p").flags}
    assert sources["--tool-call-parser"] == "preset 'qwen2'"
    assert sources["--max-model-len"] == "field 'max_model_len'"
    assert sources["--seed"] == "extra_args"


def test_engine_env_sets_devices_cpu_cache_and_binding_then_the_explicit_env() -> None:
    engine = EngineConfig(
        model="m",
        devices="1,2",
        cpu_kvcache_space_gib=2,
        cpu_threads_bind="0-3",
        env={"VLLM_LOGGING_LEVEL": "DEBUG", "CUDA_VISIBLE_DEVICES": "3"},
    )
    env = engine_env(engine, base={"PATH": "/bin", "VLLM_CPU_KVCACHE_SPACE": "40"})
    assert env["PATH"] == "/bin"
    assert env["VLLM_CPU_KVCACHE_SPACE"] == "2"
    assert env["VLLM_CPU_OMP_THREADS_BIND"] == "0-3"
    assert env["VLLM_LOGGING_LEVEL"] == "DEBUG"
    assert env["CUDA_VISIBLE_DEVICES"] == "3"  # the explicit env wins


def test_engine_env_leaves_unset_fields_to_the_gateway_environment() -> None:
    env = engine_env(EngineConfig(model="m"), base={"VLLM_CPU_KVCACHE_SPACE": "4"})
    assert env["VLLM_CPU_KVCACHE_SPACE"] == "4"
    assert "CUDA_VISIBLE_DEVICES" not in env


def test_default_sampling_is_the_preset_overridden_by_the_engine() -> None:
    assert default_sampling(EngineConfig(model="m", family="deepseek-r1"))["temperature"] == 0.6
    engine = EngineConfig(model="m", family="deepseek-r1", sampling={"temperature": 0.3})
    assert default_sampling(engine) == {**PRESETS["deepseek-r1"].sampling, "temperature": 0.3}
    assert default_sampling(EngineConfig(model="m", family="qwen2")) == {}


def test_the_gateways_own_metrics_directory_stays_out_of_an_engines_environment() -> None:
    engine = EngineConfig(model="/m", family="llama3", env={"HF_HOME": "/models"})
    base = {"PROMETHEUS_MULTIPROC_DIR": "/tmp/gateway-metrics", "PATH": "/usr/bin"}
    env = engine_env(engine, base)
    assert "PROMETHEUS_MULTIPROC_DIR" not in env
    assert env["PATH"] == "/usr/bin" and env["HF_HOME"] == "/models"
