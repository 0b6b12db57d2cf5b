"""Checks before an engine launches: vLLM flags (against the installed vLLM's
own --help) and weight checksums. A failed check fails that engine, with a
message naming it, and launches nothing."""

from __future__ import annotations

import hashlib
import io
import sys
from pathlib import Path

import orjson
import pytest

from adapters.errors import EngineStartError
from gateway.config.schema import EngineConfig
from gateway.engines.checksums import verify_checksums
from gateway.engines.flags import cache_file, default_cache_dir, load_flags, parse_help
from gateway.engines.handle import EngineState
from gateway.engines.presets import FlagUse, build_command
from gateway.engines.supervisor import EngineManager
from gateway.observability.logs import make_logger

HELP_SAMPLE = """usage: api_server.py [-h] [--model MODEL]
                     [--enable-auto-tool-choice | --no-enable-auto-tool-choice]
                     [--tool-call-parser {hermes,llama3_json}] [--max-model-len MAX_MODEL_LEN]
"""


async def failed_engine(engine: EngineConfig, tmp_path: Path) -> tuple[str, list[dict]]:
    """Run the real manager on one engine that must fail its checks; its error and log events."""
    stream = io.BytesIO()
    manager = EngineManager({"checked": engine}, log=make_logger(stream), log_dir=tmp_path)
    manager.start()
    try:
        assert await manager.wait_settled(timeout=120)
        handle = manager.handles["checked"]
        assert handle.state is EngineState.FAILED
        assert handle.process is None and handle.pid is None  # nothing was launched
        assert not handle.log_path.exists()
        assert handle.error is not None
        return handle.error, [orjson.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        await manager.stop()


async def test_an_unknown_vllm_flag_fails_the_engine_naming_engine_and_flag(tmp_path: Path) -> None:
    engine = EngineConfig(model=str(tmp_path), family="qwen2", extra_args=["--enable-warp-drive"])
    error, events = await failed_engine(engine, tmp_path)
    assert "engine 'checked'" in error
    assert "--enable-warp-drive" in error and "extra_args" in error
    failures = [e for e in events if e["event"] == "engine.failed"]
    assert failures and failures[0]["engine"] == "checked"
    assert "--enable-warp-drive" in failures[0]["reason"]


async def test_a_parser_the_installed_vllm_lacks_fails_the_engine(tmp_path: Path) -> None:
    engine = EngineConfig(
        model=str(tmp_path), family="llama3", extra_args=["--tool-call-parser", "llama9_json"]
    )
    error, _ = await failed_engine(engine, tmp_path)
    assert "--tool-call-parser llama9_json" in error
    assert "hermes" in error  # the message lists what the installed vLLM accepts


async def test_the_installed_vllm_accepts_every_preset_and_typed_field() -> None:
    flags = await load_flags(sys.executable, default_cache_dir())
    for family in ("deepseek-r1", "deepseek-v3", "llama3", "qwen2"):
        engine = EngineConfig(
            model="m",
            family=family,
            served_name="s",
            tensor_parallel_size=1,
            pipeline_parallel_size=1,
            max_model_len=512,
            gpu_memory_utilization=0.5,
            dtype="bfloat16",
            quantization="fp8",
            kv_cache_dtype="auto",
            max_num_seqs=4,
            max_num_batched_tokens=512,
            enable_prefix_caching=True,
            chat_template="t",
            enforce_eager=True,
        )
        assert flags.problems("e", build_command(engine, port=1, python="p").flags) == []


def test_a_preset_flag_missing_from_vllm_is_named_with_its_preset() -> None:
    flags = parse_help(HELP_SAMPLE, "0.0.1")
    engine = EngineConfig(model="m", family="deepseek-r1")
    problems = flags.problems("r1", build_command(engine, port=1, python="p").flags)
    assert problems == [
        "engine 'r1': the installed vLLM 0.0.1 has no flag --reasoning-parser "
        "(from preset 'deepseek-r1')"
    ]


def test_help_parsing_finds_switches_their_negations_and_choices() -> None:
    flags = parse_help(HELP_SAMPLE, "0.0.1")
    assert {"--model", "--no-enable-auto-tool-choice", "--max-model-len"} <= flags.flags
    assert flags.choices["--tool-call-parser"] == ("hermes", "llama3_json")
    use = FlagUse("--tool-call-parser", "mistral", "extra_args")
    assert "accepts: hermes, llama3_json" in flags.problems("e", [use])[0]
    # A parser plugin registers names --help cannot list: values are not checked then.
    plugin = FlagUse("--tool-parser-plugin", "p.py", "extra_args")
    assert flags.problems("e", [use, plugin]) == [
        "engine 'e': the installed vLLM 0.0.1 has no flag --tool-parser-plugin (from extra_args)"
    ]


async def test_the_flag_set_is_cached_on_disk_per_vllm_version(tmp_path: Path) -> None:
    first = await load_flags(sys.executable, default_cache_dir())
    cache = cache_file(default_cache_dir(), first.version, sys.executable)
    assert sorted(orjson.loads(cache.read_bytes())["flags"]) == sorted(first.flags)
    # A cache entry is used as is: --help does not run again.
    data = orjson.loads(cache.read_bytes())
    data["flags"].append("--only-in-the-cache")
    (tmp_path / cache.name).write_bytes(orjson.dumps(data))
    second = await load_flags(sys.executable, tmp_path)
    assert "--only-in-the-cache" in second.flags


def weights(tmp_path: Path) -> tuple[Path, str]:
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.safetensors").write_bytes(b"not really weights")
    return model, hashlib.sha256(b"not really weights").hexdigest()


async def test_a_checksum_mismatch_refuses_to_start_naming_the_file(tmp_path: Path) -> None:
    model, _ = weights(tmp_path)
    engine = EngineConfig(model=str(model), sha256={"model.safetensors": "ab" * 32})
    error, _ = await failed_engine(engine, tmp_path)
    assert "checksum mismatch" in error
    assert str(model / "model.safetensors") in error
    assert "refusing to start" in error


def test_matching_checksums_pass(tmp_path: Path) -> None:
    model, digest = weights(tmp_path)
    verify_checksums("e", str(model), {"model.safetensors": digest.upper()})
    verify_checksums("e", "org/hub-model", {str(model / "model.safetensors"): digest})


def test_a_missing_weight_file_is_named(tmp_path: Path) -> None:
    model, digest = weights(tmp_path)
    expected = {"model.safetensors": digest, "shard-2.safetensors": digest}
    with pytest.raises(EngineStartError, match=r"weight file .*shard-2\.safetensors is missing"):
        verify_checksums("e", str(model), expected)


def test_relative_checksum_paths_need_a_local_model() -> None:
    with pytest.raises(EngineStartError, match="hub id"):
        verify_checksums("e", "Qwen/Qwen2.5-0.5B-Instruct", {"model.safetensors": "00" * 32})
