"""Instructions per request, counted by valgrind's callgrind: a figure this
noisy machine cannot move.

    python -m tests.benchmarks.instructions plain deployed            # ~1 minute
    python -m tests.benchmarks.instructions gateway --stream --root ../old-checkout
    python -m tests.benchmarks.instructions gateway pii --pii-prompt  # workload (k)'s

Each configuration (``configs.GATEWAY_VARIANTS``) runs ``python -m gateway
serve`` under callgrind with counting off; after a warm-up, counting is
switched on for ``--requests`` requests (concurrency 4) to the mock upstream,
then off, and the count is divided by the requests. The count is of the
gateway's user-space instructions, every thread included (the audit writer
too); system calls and cache misses are not in it, so it compares code paths,
not wall-clock speed. ``pii`` is ``gateway`` with workload (k)'s ``pii``
guardrail; ``--pii-prompt`` sends (k)'s prompt, which holds two values to
mask. ``--root`` runs the gateway from another checkout (the code before a
change) with this checkout's configs and driver.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from tests.benchmarks import procs
from tests.benchmarks.configs import (
    GATEWAY_VARIANTS,
    PUBLIC_MODEL,
    gateway_bench_config,
    gateway_client_headers,
    with_pii_guardrail,
)
from tests.benchmarks.feature_workloads import PII_CHAT
from tests.benchmarks.loads import CHAT, STREAM, Load, send
from tests.benchmarks.mock_upstream import MODEL as MOCK_MODEL
from tests.benchmarks.subjects import Subject, start_mock
from tests.helpers import free_port


def _total(out: Path) -> int:
    """The instructions of every dump of ``out`` (one per thread and dump)."""
    total = 0
    for dump in out.parent.glob(out.name + "*"):
        for line in dump.read_text(errors="replace").splitlines():
            if line.startswith("totals:"):
                total += int(line.split()[1])
                break
    return total


VARIANTS = (*GATEWAY_VARIANTS, "pii")


def _config(variant: str, upstream: str, logs: Path) -> dict[str, Any]:
    if variant == "pii":
        return with_pii_guardrail(gateway_bench_config(upstream, MOCK_MODEL, logs, "gateway"))
    return gateway_bench_config(upstream, MOCK_MODEL, logs, variant)


def count(
    variant: str, body: dict[str, Any], requests: int, root: Path, logs: Path, upstream: str
) -> int:
    """Instructions per request of one configuration."""
    config = _config(variant, upstream, logs)
    config_path = logs / f"{variant}.yaml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    out = logs / f"{variant}.callgrind"
    port = free_port()
    args = [
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",
        f"--callgrind-out-file={out}",
        sys.executable,
        *("-m", "gateway", "serve", "--config", str(config_path), "--port", str(port)),
    ]
    server = procs.Server(variant, args, port, logs, cwd=root)
    try:
        server.wait_ready("/health", timeout=600)
        headers = {} if variant == "plain" else gateway_client_headers()
        subject = Subject(variant, server.url + "/v1", PUBLIC_MODEL, headers, server)
        send(subject, Load(concurrency=4, requests=200), body)  # warm-up, not counted
        control = ["callgrind_control", "-i"]
        subprocess.run([*control, "on", str(server.pid)], check=True, capture_output=True)
        send(subject, Load(concurrency=4, requests=requests), body)
        subprocess.run([*control, "off", str(server.pid)], check=True, capture_output=True)
        dump = ["callgrind_control", "-d", str(server.pid)]
        subprocess.run(dump, check=True, capture_output=True)
    finally:
        server.stop()
    return round(_total(out) / requests)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variants", nargs="+", choices=VARIANTS)
    parser.add_argument("--stream", action="store_true", help="16-chunk streams, not requests")
    parser.add_argument("--keep", type=Path, help="keep the callgrind files here")
    parser.add_argument("--pii-prompt", action="store_true", help="workload (k)'s prompt")
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--root", type=Path, default=procs.ROOT, help="the checkout to run")
    args = parser.parse_args(argv)
    if subprocess.run(["valgrind", "--version"], capture_output=True).returncode != 0:
        parser.error("valgrind is not installed (apt install valgrind)")
    body = {**PII_CHAT} if args.pii_prompt else {**CHAT}
    if args.stream:
        body |= {key: value for key, value in STREAM.items() if key not in CHAT}
    with tempfile.TemporaryDirectory(prefix="vllm-gateway-instructions-") as tmp:
        logs = args.keep or Path(tmp)
        logs.mkdir(parents=True, exist_ok=True)
        mock = start_mock(logs)
        try:
            figures = {
                variant: count(variant, body, args.requests, args.root, logs, mock.url + "/v1")
                for variant in args.variants
            }
        finally:
            mock.stop()
    what = "stream" if args.stream else "request"
    base = next(iter(figures.values()))
    for variant, figure in figures.items():
        share = f"{100.0 * base / figure:.1f}% of {args.variants[0]}'s rate" if figure else ""
        print(f"{variant:10s} {figure:>10,} instructions per {what}  {share}")
    print(f"(gateway run from {os.path.abspath(args.root)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
