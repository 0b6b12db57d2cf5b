"""The ``vllm-gateway`` command: serve, check."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from gateway.config import GatewayConfig
from gateway.config_loader import load_config
from gateway.errors import ConfigError


def _load_or_exit(path: str) -> GatewayConfig:
    try:
        return load_config(path)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        raise SystemExit(2) from exc


def routing_table(config: GatewayConfig) -> str:
    """The resolved routing table, with every secret masked."""
    lines = ["providers:"]
    for name, provider in config.providers.items():
        key = "set (masked)" if provider.api_key and provider.api_key.get_secret_value() else "none"
        lines.append(f"  {name}: kind={provider.kind} base_url={provider.base_url} api_key={key}")
    if config.engines:
        lines.append("engines:")
        for name, engine in config.engines.items():
            lines.append(f"  {name}: model={engine.model} family={engine.family or '-'}")
    lines.append("models:")
    for name, model in config.models.items():
        lines.append(f"  {name} (strategy={model.strategy})")
        for target in model.targets:
            where = (
                f"engine {target.engine}"
                if target.engine
                else f"provider {target.provider} model {target.model}"
            )
            lines.append(f"    -> {where} weight={target.weight:g} tier={target.tier}")
        if model.fallbacks:
            lines.append(f"    fallbacks: {', '.join(model.fallbacks)}")
    return "\n".join(lines)


def cmd_check(args: argparse.Namespace) -> int:
    config = _load_or_exit(args.path)
    print(f"{args.path}: OK")
    print(routing_table(config))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from gateway.server import serve

    config = _load_or_exit(args.config)
    host = args.host or config.server.host
    port = args.port if args.port is not None else config.server.port
    serve(config, host=host, port=port)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vllm-gateway", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the gateway")
    serve.add_argument("--config", default="models.yaml", help="path to models.yaml")
    serve.add_argument("--host", default=None, help="bind address (overrides server.host)")
    serve.add_argument("--port", type=int, default=None, help="port (overrides server.port)")
    serve.set_defaults(func=cmd_serve)

    check = commands.add_parser("check", help="validate models.yaml and print the routing table")
    check.add_argument("path", help="path to models.yaml")
    check.set_defaults(func=cmd_check)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
