"""The ``render`` subcommand of ``vllm-gateway``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from adapters.errors import ConfigError
from gateway.render import RENDERERS, render


def add_render_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    command = commands.add_parser(
        "render",
        help="generate the Docker Compose project or the Kubernetes manifests from models.yaml",
    )
    command.add_argument("kind", choices=sorted(RENDERERS), help="what to generate")
    command.add_argument("path", type=Path, help="path to models.yaml")
    command.add_argument(
        "-o", "--out", dest="out_dir", type=Path, required=True, help="directory to write into"
    )
    command.set_defaults(func=cmd_render)


def cmd_render(args: argparse.Namespace) -> int:
    try:
        written, warnings = render(args.kind, args.path, args.out_dir)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    for path in written:
        print(path)
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return 0
