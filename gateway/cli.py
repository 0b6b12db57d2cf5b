"""The ``vllm-gateway`` command: serve, check, tiny-models."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from adapters.errors import ConfigError
from gateway.config.access import describe_access
from gateway.config.loader import config_warnings, load_config
from gateway.config.schema import GatewayConfig
from gateway.engines.tiny import DEMO_FAMILIES, FAMILIES
from gateway.render.command import add_render_command


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
            replicas = f" replicas={engine.replicas}" if engine.replicas > 1 else ""
            lines.append(f"  {name}: model={engine.model} family={engine.family or '-'}{replicas}")
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
        if model.guardrails:
            lines.append(
                f"    guardrails: input={','.join(model.guardrails.input) or '-'}"
                f" output={','.join(model.guardrails.output) or '-'}"
            )
        if model.cache:
            lines.append(f"    cache: {'always' if model.cache == 'always' else 'deterministic'}")
    lines.extend(describe_access(config.auth, redis=config.redis_url is not None))
    return "\n".join(lines)


def cmd_check(args: argparse.Namespace) -> int:
    config = _load_or_exit(args.path)
    print(f"{args.path}: OK")
    for warning in config_warnings(config):
        print(f"warning: {warning}")
    print(routing_table(config))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from gateway.api.server import serve

    if args.demo:
        from gateway.engines import demo

        checkpoints = demo.ensure_checkpoints(demo.tiny_models_dir())
        config = demo.demo_config(checkpoints, embedding=demo.minilm_path())
        config_path = None
    else:
        config = _load_or_exit(args.config)
        config_path = args.config
    host = args.host or config.server.host
    port = args.port if args.port is not None else config.server.port
    if args.workers > 1 and config.knowledge is not None:
        # Each worker would open the catalog and Milvus Lite, and resume ingestion, alone.
        print(
            "error: knowledge: runs in one gateway process: serve it with --workers 1",
            file=sys.stderr,
        )
        return 2
    if args.demo:
        print(demo.banner(config, host, port), file=sys.stderr, flush=True)
    serve(
        config,
        host=host,
        port=port,
        config_path=config_path,
        workers=args.workers,
        certfile=args.ssl_certfile,
        keyfile=args.ssl_keyfile,
    )
    return 0


def cmd_tiny_models(args: argparse.Namespace) -> int:
    from gateway.engines.tiny import build_checkpoint

    for family in args.families or DEMO_FAMILIES:
        print(f"{family}: {build_checkpoint(family, args.out_dir)}", flush=True)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vllm-gateway", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the gateway")
    serve.add_argument("--config", default="models.yaml", help="path to models.yaml")
    serve.add_argument("--host", default=None, help="bind address (overrides server.host)")
    serve.add_argument("--port", type=int, default=None, help="port (overrides server.port)")
    serve.add_argument(
        "--demo",
        action="store_true",
        help="ignore --config and serve three tiny local engines (llama3, qwen2, deepseek-r1), "
        "built on first run",
    )
    serve.add_argument(
        "--workers", type=int, default=1, help="worker processes sharing the port (default 1)"
    )
    serve.add_argument("--ssl-certfile", default=None, help="serve HTTPS with this certificate")
    serve.add_argument("--ssl-keyfile", default=None, help="...and this private key")
    serve.set_defaults(func=cmd_serve)

    tiny = commands.add_parser(
        "tiny-models", help="build tiny random-weight checkpoints with the real architectures"
    )
    tiny.add_argument("out_dir", type=Path, help="directory to build them in (reused if built)")
    tiny.add_argument(
        "--family",
        dest="families",
        action="append",
        choices=FAMILIES,
        help="a family to build (repeatable; default: llama3, qwen2, deepseek-r1)",
    )
    tiny.set_defaults(func=cmd_tiny_models)

    check = commands.add_parser("check", help="validate models.yaml and print the routing table")
    check.add_argument("path", help="path to models.yaml")
    check.set_defaults(func=cmd_check)

    add_render_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
