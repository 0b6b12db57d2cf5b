"""Tiny random-weight checkpoints with the real architectures of each family.

They load in a real vLLM engine in seconds, so tests and the offline demo
exercise the whole serving path (tokenizer, chat template, paged attention,
continuous batching, tool and reasoning parsers) without downloading weights.
The text they generate is gibberish. Two sizes (``SHAPES``): ``tiny``, what
tests and the demo serve, and ``small``, for benchmarks where the forward
pass itself must cost something.

Building needs torch, transformers and tokenizers; the gateway runs this
module in a subprocess (``python -m gateway.engines.tiny DIR``) so the gateway
process itself never holds torch.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gateway.engines.templates import TOKENIZER_SPECS, TokenizerSpec

# The families the offline demo serves; deepseek-v3 (MoE) is built on request.
DEMO_FAMILIES = ("llama3", "qwen2", "deepseek-r1")
FAMILIES = (*DEMO_FAMILIES, "deepseek-v3")
ARCHITECTURES = {
    "llama3": "LlamaForCausalLM",
    "qwen2": "Qwen2ForCausalLM",
    "deepseek-r1": "Qwen2ForCausalLM",  # DeepSeek-R1-Distill-Qwen
    "deepseek-v3": "DeepseekV3ForCausalLM",
}
LEARNED_VOCAB = 1024
CORPUS_DIR = Path("/usr/share/common-licenses")
_FALLBACK_CORPUS = (
    "The gateway routes each request to a local engine or a remote provider. "
    "Engines batch requests together and page their key value cache. "
)
# The model's shape by size. head_dim 64 because the CPU attention kernel
# rejects 16. "tiny" is what tests and the demo serve: its forward pass costs
# next to nothing, so a step's time is vLLM's own overhead. "small" (about 9M
# parameters) is for measuring what a prefix cache hit saves: its prefill of a
# few hundred tokens costs a few decode steps, about as a 1B model's does on a GPU.
SHAPES: dict[str, dict[str, Any]] = {
    "tiny": {
        "hidden_size": 128,
        "intermediate_size": 256,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "head_dim": 64,
    },
    "small": {
        "hidden_size": 384,
        "intermediate_size": 1536,
        "num_hidden_layers": 4,
        "num_attention_heads": 6,
        "num_key_value_heads": 2,
        "head_dim": 64,
    },
}
MAX_POSITIONS = 4096
_COMPLETE = ".tiny-complete"


def checkpoint_dir(family: str, out_dir: Path, size: str = "tiny") -> Path:
    return Path(out_dir) / f"{size}-{family}"


def build_checkpoint(family: str, out_dir: Path, size: str = "tiny") -> Path:
    """Build (or reuse) the checkpoint of ``family`` and ``size`` (``SHAPES``)
    under ``out_dir``.

    Returns the checkpoint directory, ``out_dir/<size>-<family>``, which vLLM
    can serve as a local model path. A checkpoint built by the same recipe is
    reused; the build writes to a temporary directory and renames it into
    place, so concurrent builders never see a half-written checkpoint.
    """
    if family not in ARCHITECTURES:
        raise ValueError(f"unknown family '{family}'; expected one of {', '.join(FAMILIES)}")
    if size not in SHAPES:
        raise ValueError(f"unknown size '{size}'; expected one of {', '.join(SHAPES)}")
    target = checkpoint_dir(family, out_dir, size)
    stamp = _recipe_stamp(family, size)
    if _is_built(target, stamp):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    staging.chmod(0o755)  # mkdtemp makes it private; the checkpoint is not secret
    try:
        _write_tokenizer(TOKENIZER_SPECS[family], staging)
        _write_model(family, staging, SHAPES[size])
        (staging / _COMPLETE).write_text(stamp)
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if _is_built(target, stamp):  # another builder won the race
            return target
        raise
    return target


def _recipe_stamp(family: str, size: str) -> str:
    """Changes whenever what would be built changes (this code, the templates,
    the library versions), so a stale checkpoint is rebuilt rather than reused.
    Reads versions from package metadata: checking a cache must not import torch."""
    from gateway.engines import templates

    digest = hashlib.sha256(f"{family}/{size}".encode())
    for source in (__file__, templates.__file__):
        digest.update(Path(source).read_bytes())
    for package in ("transformers", "tokenizers"):
        try:
            digest.update(importlib.metadata.version(package).encode())
        except importlib.metadata.PackageNotFoundError:
            digest.update(b"-")
    return digest.hexdigest()


def is_built(family: str, out_dir: Path, size: str = "tiny") -> bool:
    """Whether ``build_checkpoint`` would reuse what is already there."""
    return _is_built(checkpoint_dir(family, out_dir, size), _recipe_stamp(family, size))


def _is_built(target: Path, stamp: str) -> bool:
    marker = target / _COMPLETE
    return marker.is_file() and marker.read_text() == stamp


def _corpus() -> list[str]:
    texts = []
    if CORPUS_DIR.is_dir():
        for path in sorted(CORPUS_DIR.iterdir()):
            if path.is_file():
                texts.append(path.read_text(errors="replace"))
    return texts or [_FALLBACK_CORPUS]


def _write_tokenizer(spec: TokenizerSpec, out: Path) -> None:
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=LEARNED_VOCAB,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(_corpus(), trainer=trainer)
    tokenizer.add_special_tokens(
        [AddedToken(token, special=True, normalized=False) for token in spec.special]
    )
    tokenizer.add_tokens(
        [AddedToken(token, special=False, normalized=False) for token in spec.visible]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=spec.bos,
        eos_token=spec.eos,
        pad_token=spec.eos,
        model_max_length=MAX_POSITIONS,
    )
    fast.chat_template = spec.chat_template
    fast.save_pretrained(str(out))


def _rope(theta: float) -> dict[str, Any]:
    return {"rope_type": "default", "rope_theta": theta}


def _model_config(
    family: str, shape: dict[str, Any], vocab_size: int, bos_id: int, eos_id: int
) -> Any:
    import transformers

    common = dict(
        shape,
        max_position_embeddings=MAX_POSITIONS,
        vocab_size=vocab_size,
        bos_token_id=bos_id,
        eos_token_id=eos_id,
        dtype="bfloat16",
    )
    if family == "llama3":
        return transformers.LlamaConfig(
            **common, rope_parameters=_rope(500000.0), tie_word_embeddings=False
        )
    if family in ("qwen2", "deepseek-r1"):
        return transformers.Qwen2Config(
            **common, rope_parameters=_rope(1000000.0), tie_word_embeddings=True
        )
    config = transformers.DeepseekV3Config(
        **{k: v for k, v in common.items() if k != "head_dim"},
        moe_intermediate_size=64,
        n_routed_experts=4,
        n_shared_experts=1,
        num_experts_per_tok=2,
        n_group=1,
        topk_group=1,
        first_k_dense_replace=1,
        # vLLM's CPU MLA kernel needs a latent width of kv_lora_rank + rope = 576,
        # DeepSeek-V3's own (512 + 64).
        kv_lora_rank=512,
        q_lora_rank=None,
        qk_rope_head_dim=64,
        qk_nope_head_dim=64,
        v_head_dim=64,
        tie_word_embeddings=False,
    )
    # DeepSeek-V3's router, which vLLM reads from config.json (transformers
    # implies it and has no such fields).
    config.topk_method = "noaux_tc"
    config.scoring_func = "sigmoid"
    return config


def _write_model(family: str, out: Path, shape: dict[str, Any]) -> None:
    import torch
    import transformers

    transformers.utils.logging.disable_progress_bar()
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(out))
    spec = TOKENIZER_SPECS[family]
    bos_id = int(tokenizer.convert_tokens_to_ids(spec.bos))  # type: ignore[arg-type]
    eos_id = int(tokenizer.convert_tokens_to_ids(spec.eos))  # type: ignore[arg-type]
    config = _model_config(family, shape, len(tokenizer), bos_id, eos_id)
    config.architectures = [ARCHITECTURES[family]]
    torch.manual_seed(0)  # the same checkpoint on every machine
    model = transformers.AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    model.save_pretrained(str(out))
    generation: dict[str, Any] = {"bos_token_id": bos_id, "eos_token_id": eos_id}
    if family == "deepseek-r1":
        generation.update(temperature=0.6, top_p=0.95, do_sample=True)
    (out / "generation_config.json").write_text(json.dumps(generation, indent=2))


def build_all(out_dir: Path, families: Sequence[str] = DEMO_FAMILIES) -> dict[str, Path]:
    return {family: build_checkpoint(family, out_dir) for family in families}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build tiny random-weight checkpoints.")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--family", action="append", choices=FAMILIES, dest="families")
    args = parser.parse_args(argv)
    for family, path in build_all(args.out_dir, args.families or DEMO_FAMILIES).items():
        print(f"{family}: {path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
