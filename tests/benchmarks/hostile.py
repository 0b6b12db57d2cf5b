"""Each hostile-peer attack of tests/hostile.py against a gateway on its
default limits, with what it cost: time, the gateway's peak memory growth,
the worst /health latency meanwhile, and what the attacker got.

  python -m tests.benchmarks.hostile                       # this checkout
  python -m tests.benchmarks.hostile --gateway-root DIR    # another one (before a change)

The hostile upstream and the attacks always come from this checkout; only
the gateway under test comes from ``--gateway-root``. Idle and slow clients
are looked at after ``--hold-seconds`` (default 12: past the default
header_timeout of 10 s, well before the 75 s keep-alive).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from tests import hostile
from tests.helpers import ROOT, Gateway, RawUpstream

KEY = "sk-bench-tpm"


def config(raw: RawUpstream) -> dict[str, Any]:
    def on(model: str) -> dict[str, Any]:
        return {"targets": [{"provider": "hostile", "model": model}], "retries": {"attempts": 1}}

    return {
        "server": {"max_body_bytes": 8 * 1024 * 1024},
        "providers": {"hostile": {"kind": "openai", "base_url": raw.base_url}},
        "models": {
            "huge-line": on("huge-line"),
            "huge-second": on("huge-second-event"),
            "bomb": on("bomb"),
            "deflated": on("completion-raw-deflate"),
            "any": on("completion"),
        },
        # A key with a TPM limit: its prompts are counted before they are sent.
        "auth": {"keys": [{"name": "tpm", "key": KEY, "tpm": 100_000_000}]},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--gateway-root", type=Path, default=ROOT)
    parser.add_argument("--hold-seconds", type=float, default=12.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vllm-gateway-hostile-") as tmp:
        raw = RawUpstream(Path(tmp))
        gateway = Gateway(Path(tmp), config(raw), cwd=args.gateway_root)
        time.sleep(2)  # past the tokenizer's load
        base, port = gateway.url, gateway.port
        hold = args.hold_seconds
        attacks = {
            "50 MB first stream event": lambda: hostile.huge_line_stream(base, "huge-line", KEY),
            "50 MB second stream event": lambda: hostile.huge_line_stream(base, "huge-second", KEY),
            "100 KB gzip bomb (100 MB)": lambda: hostile.compressed_answer(base, "bomb", KEY),
            "raw-deflate answer": lambda: hostile.compressed_answer(base, "deflated", KEY),
            "200 slow-header clients": lambda: hostile.slow_headers("127.0.0.1", port, 200, hold),
            "2,000 idle connections": lambda: hostile.idle_connections(
                "127.0.0.1", port, 2000, hold
            ),
            "64 KB header": lambda: hostile.big_header(base),
            "arrays nested 254 deep": lambda: hostile.deep_nesting(base, "any", key=KEY),
            "4 MB one-word prompt, TPM key": lambda: hostile.one_word_prompt(base, "any", KEY),
        }
        try:
            print(f"gateway: {args.gateway_root}")
            for name, run in attacks.items():
                outcome = hostile.attack(base, gateway.proc.pid, run)
                row = outcome.row()
                row.pop("body", None)
                print(f"{name}: {row}", flush=True)
        finally:
            gateway.stop()
            raw.stop()


if __name__ == "__main__":
    main()
