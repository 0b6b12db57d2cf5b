"""Tiny checkpoints: real architectures, real tokenizers with the family's
markers as single tokens, the family's chat template, and reuse once built."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.engines.demo import demo_config
from gateway.engines.tiny import ARCHITECTURES, SHAPES, build_checkpoint, is_built
from tests.helpers import ROOT

TOOLS = [
    {
        "type": "function",
        "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {}}},
    }
]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("tiny")
    return {family: build_checkpoint(family, out) for family in ARCHITECTURES}


@pytest.mark.parametrize("family", list(ARCHITECTURES))
def test_each_family_has_its_real_architecture_in_bf16(built: dict[str, Path], family: str) -> None:
    config = json.loads((built[family] / "config.json").read_text())
    assert config["architectures"] == [ARCHITECTURES[family]]
    assert config["dtype"] == "bfloat16"
    if family != "deepseek-v3":
        # The CPU attention kernel rejects head_dim 16.
        assert config["head_dim"] == 64
    else:
        # The CPU MLA kernel needs a 576-wide latent, as in DeepSeek-V3.
        assert config["kv_lora_rank"] + config["qk_rope_head_dim"] == 576
        assert config["n_routed_experts"] > 1
    assert (built[family] / "model.safetensors").stat().st_size < 4_000_000


def test_a_built_checkpoint_is_reused(built: dict[str, Path]) -> None:
    path = built["llama3"]
    weights = path / "model.safetensors"
    before = weights.stat().st_mtime_ns
    assert is_built("llama3", path.parent)
    assert build_checkpoint("llama3", path.parent) == path
    assert weights.stat().st_mtime_ns == before


def test_the_small_size_is_built_apart_with_its_own_shape(
    built: dict[str, Path], tmp_path: Path
) -> None:
    small = build_checkpoint("llama3", tmp_path, size="small")
    assert small.name == "small-llama3" and is_built("llama3", tmp_path, size="small")
    assert not is_built("llama3", tmp_path)  # the tiny one is not there
    config = json.loads((small / "config.json").read_text())
    for key, value in SHAPES["small"].items():
        assert config[key] == value
    assert (
        config["hidden_size"]
        > json.loads((built["llama3"] / "config.json").read_text())["hidden_size"]
    )
    # The same tokenizer and chat template as the tiny one.
    assert (small / "tokenizer.json").read_bytes() == (
        built["llama3"] / "tokenizer.json"
    ).read_bytes()
    with pytest.raises(ValueError, match="unknown size 'huge'"):
        build_checkpoint("llama3", tmp_path, size="huge")


def tokenizer(path: Path):  # type: ignore[no-untyped-def]
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(path))


def test_the_deepseek_r1_template_opens_a_think_block(built: dict[str, Path]) -> None:
    tok = tokenizer(built["deepseek-r1"])
    for marker in ("<think>", "</think>"):
        assert len(tok(marker, add_special_tokens=False)["input_ids"]) == 1
    messages = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "<think>\nearlier reasoning</think>Hello."},
        {"role": "user", "content": "Again"},
    ]
    prompt = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert prompt.endswith("<｜User｜>Again<｜Assistant｜><think>\n")  # noqa: RUF001
    assert "earlier reasoning" not in prompt  # past reasoning is not sent back
    assert "Hello." in prompt


def test_the_qwen2_template_lists_tools_in_hermes_form(built: dict[str, Path]) -> None:
    tok = tokenizer(built["qwen2"])
    assert len(tok("<tool_call>", add_special_tokens=False)["input_ids"]) == 1
    prompt = tok.apply_chat_template(
        [{"role": "user", "content": "Weather?"}],
        tools=TOOLS,
        tokenize=False,
        add_generation_prompt=True,
    )
    assert '<tools>\n{"type": "function", "function": {"name": "get_weather"' in prompt
    assert prompt.endswith("<|im_start|>user\nWeather?<|im_end|>\n<|im_start|>assistant\n")


def test_the_llama3_template_uses_header_tokens_and_tools(built: dict[str, Path]) -> None:
    tok = tokenizer(built["llama3"])
    prompt = tok.apply_chat_template(
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Weather?"}],
        tools=TOOLS,
        tokenize=False,
        add_generation_prompt=True,
    )
    assert prompt.startswith("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n")
    assert '"name": "get_weather"' in prompt and "Be brief.<|eot_id|>" in prompt
    assert prompt.endswith("<|start_header_id|>assistant<|end_header_id|>\n\n")
    assert tok.eos_token == "<|eot_id|>"


def test_the_demo_serves_the_public_names_the_readme_uses(tmp_path: Path) -> None:
    paths = {family: tmp_path / family for family in ("llama3", "qwen2", "deepseek-r1")}
    config = demo_config(paths)
    assert set(config.models) == {"llama3", "qwen2", "deepseek-r1"}
    assert config.models["qwen2"].targets[0].engine == "qwen2-local"
    readme = (ROOT / "README.md").read_text()
    assert '"model": "qwen2"' in readme and 'model="qwen2"' in readme
    assert "serves them as `llama3`, `qwen2` and\n`deepseek-r1`" in readme
