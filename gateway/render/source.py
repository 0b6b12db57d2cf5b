"""models.yaml as a deployment: the gateway's rewritten config, one service per
engine, and the secrets both take from the environment.

The config is validated as the gateway would load it, but the rendered
gateway config is built from the raw YAML data, so every ``${VAR}`` stays a
reference that the gateway resolves from its own environment at startup:
secrets never land in a rendered file.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from adapters.errors import ConfigError
from gateway.config.loader import _ENV_REF, parse_config
from gateway.config.schema import EngineConfig, GatewayConfig
from gateway.engines.presets import SERVER_MODULE, build_command, engine_env, is_local_path
from gateway.engines.remote import engines_as_providers_data

# What gateway.config.loader resolves, ${NAME} or ${NAME:-default}: the very
# same pattern, so that a rendered file keeps exactly the references the
# gateway will resolve.
ENV_REFERENCE = _ENV_REF
WHOLE_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
GATEWAY_PORT = 8000
ENGINE_PORT = 8000
REDIS_URL = "redis://redis:6379/0"
# The Hugging Face cache inside engine containers, on a volume so downloads persist.
MODEL_CACHE = "/models"
HF_TOKEN = "HF_TOKEN"
# Engine environment that device reservations replace inside a container.
HOST_ONLY_ENV = frozenset({"CUDA_VISIBLE_DEVICES"})
_DNS_LABEL = re.compile(r"[^a-z0-9-]+")


@dataclass(frozen=True, slots=True)
class SecretEnv:
    """An environment variable a container takes from the secret store."""

    name: str  # in the container
    key: str  # in the Kubernetes Secret, and the host variable compose reads
    default: str | None = None  # ${KEY:-default}: optional, with this value if unset


@dataclass(frozen=True, slots=True)
class EngineService:
    """One engine of models.yaml as its own ``vllm serve`` service."""

    engine: str  # its name in models.yaml
    service: str  # DNS name (compose service, Kubernetes Service)
    config: EngineConfig
    args: list[str]  # after the program: --model M --host 0.0.0.0 --port 8000 <flags>
    env: dict[str, str]
    secret_env: list[SecretEnv]
    gpus: int  # per replica
    device_ids: list[str] | None  # the `devices:` GPUs, when given (one replica only)
    replicas: int = 1  # pods (Kubernetes) or containers (compose) behind the one service

    @property
    def on_cpu(self) -> bool:
        engine = self.config
        return engine.cpu_kvcache_space_gib is not None or engine.cpu_threads_bind is not None

    @property
    def url(self) -> str:
        return f"http://{self.service}:{ENGINE_PORT}/v1"


@dataclass(slots=True)
class Deployment:
    source: Path
    config: GatewayConfig
    engines: list[EngineService]
    gateway_config: dict[str, Any]  # raw YAML data of the gateway's rewritten config
    gateway_secrets: list[SecretEnv]
    warnings: list[str] = field(default_factory=list)

    @property
    def drain_seconds(self) -> float:
        return self.config.server.drain_seconds

    @property
    def host_port(self) -> int:
        return self.config.server.port or GATEWAY_PORT

    def grace_seconds(self, pre_stop: int) -> int:
        """Time between SIGTERM and SIGKILL: the preStop wait, the drain, a margin."""
        return pre_stop + math.ceil(self.drain_seconds) + 5


def load_deployment(path: Path) -> Deployment:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError([f"cannot read file: {exc.strerror}"], str(path)) from exc
    config = parse_config(text, source=str(path), env=_validation_env(text))
    raw = yaml.safe_load(text) or {}
    engines = [_engine_service(name, engine, raw) for name, engine in config.engines.items()]
    _refuse_duplicate_services(engines, path)
    urls = {service.engine: service.url for service in engines}
    gateway = engines_as_providers_data(raw, config.engines, urls)
    server = dict(gateway.get("server") or {})
    server.update(host="0.0.0.0", port=GATEWAY_PORT)  # every interface of the container
    gateway = {"server": server, **{k: v for k, v in gateway.items() if k != "server"}}
    gateway.setdefault("redis_url", REDIS_URL)  # replicas share rate limits
    deployment = Deployment(path, config, engines, gateway, sorted_secrets(gateway))
    deployment.warnings.extend(_file_warnings(config))
    return deployment


def _validation_env(text: str) -> dict[str, str]:
    """The environment to validate with: the real one, and a stand-in for each
    ``${VAR}`` without a default that is unset (rendering needs no secrets)."""
    env = dict(os.environ)
    for match in ENV_REFERENCE.finditer(text):
        name, default = match.group(1), match.group(2)
        if default is None:
            env.setdefault(name, "set-at-deploy-time")
    return env


def sorted_secrets(data: Any) -> list[SecretEnv]:
    found: dict[str, SecretEnv] = {}
    for text in _strings(data):
        for match in ENV_REFERENCE.finditer(text):
            name = match.group(1)
            found.setdefault(name, SecretEnv(name, name, match.group(2)))
    return [found[name] for name in sorted(found)]


def _strings(data: Any) -> Iterator[str]:
    if isinstance(data, str):
        yield data
    elif isinstance(data, Mapping):
        for value in data.values():
            yield from _strings(value)
    elif isinstance(data, list):
        for value in data:
            yield from _strings(value)


def service_name(engine: str) -> str:
    """A DNS-1035 label for an engine: lowercase letters, digits and dashes."""
    label = _DNS_LABEL.sub("-", f"engine-{engine.lower()}").strip("-")
    return label[:63].rstrip("-")


def _engine_service(name: str, engine: EngineConfig, raw: Mapping[str, Any]) -> EngineService:
    raw_engine: Mapping[str, Any] = (raw.get("engines") or {})[name]
    raw_env: Mapping[str, Any] = raw_engine.get("env") or {}
    _refuse_references(name, raw_engine)
    argv = build_command(engine, port=ENGINE_PORT, python="python3").argv
    args = argv[argv.index(SERVER_MODULE) + 1 :]
    args[args.index("--host") + 1] = "0.0.0.0"  # every interface of the container
    env = {
        key: value
        for key, value in engine_env(engine, base={}).items()
        if key not in HOST_ONLY_ENV and key not in raw_env
    }
    env.update((key, str(value)) for key, value in raw_env.items() if "${" not in str(value))
    secrets = {HF_TOKEN: SecretEnv(HF_TOKEN, HF_TOKEN, "")}  # gated hub models need it
    for key, value in raw_env.items():
        if "${" not in str(value):
            continue
        match = WHOLE_REFERENCE.fullmatch(str(value))
        if match is None:
            raise ConfigError(
                [f"engines.{name}.env.{key}: to render, give a literal value or one whole ${{VAR}}"]
            )
        secrets[key] = SecretEnv(key, match.group(1))
    # One service runs its replicas alike: the first one's devices say how many GPUs each takes.
    first = engine.devices[0] if isinstance(engine.devices, list) else engine.devices
    devices = [d.strip() for d in first.split(",")] if first else None
    parallel = (engine.tensor_parallel_size or 1) * (engine.pipeline_parallel_size or 1)
    return EngineService(
        engine=name,
        service=service_name(name),
        config=engine,
        args=args,
        env=dict(sorted(env.items())),
        secret_env=[secrets[key] for key in sorted(secrets)],
        gpus=len(devices) if devices else parallel,
        device_ids=devices if engine.replicas == 1 else None,
        replicas=engine.replicas,
    )


def _refuse_references(name: str, raw_engine: Mapping[str, Any]) -> None:
    """Engine settings become command-line flags in the manifests, so they are
    written literally; only ``env`` values may be ``${VAR}`` (a secret)."""
    settings = {key: value for key, value in raw_engine.items() if key != "env"}
    for text in _strings(settings):
        if "${" in text:
            raise ConfigError(
                [
                    f"engines.{name}: '{text}' refers to the environment; an engine's settings "
                    "are written into the manifests, so give them literally (only env values "
                    "may be ${VAR})"
                ]
            )


def _refuse_duplicate_services(engines: list[EngineService], path: Path) -> None:
    seen: dict[str, str] = {}
    for service in engines:
        if service.service in seen:
            raise ConfigError(
                [
                    f"engines.{service.engine}: its service name '{service.service}' is also "
                    f"that of engine '{seen[service.service]}'; rename one"
                ],
                str(path),
            )
        seen[service.service] = service.engine


def _file_warnings(config: GatewayConfig) -> Iterator[str]:
    """Files the config names that the rendered services do not carry, and
    what replicas of one service cannot keep."""
    for name, engine in config.engines.items():
        if engine.replicas > 1:
            yield (
                f"engines.{name}: its {engine.replicas} replicas are one service, which spreads "
                "requests over them; the gateway sees one target (no prefix or load routing "
                "between the replicas), each replica takes any free GPUs rather than "
                "`devices`, and they share one model-cache volume"
            )
        if is_local_path(engine.model):
            yield (
                f"engines.{name}.model is a local path ({engine.model}): mount it into the "
                f"engine's container at the same path"
            )
        if engine.chat_template and is_local_path(engine.chat_template):
            yield f"engines.{name}.chat_template is a file: mount it into the engine's container"
    auth = config.auth
    if auth is not None and auth.keys_file:
        yield f"auth.keys_file ({auth.keys_file}): mount it next to the gateway's models.yaml"
    jwt = auth.jwt if auth is not None else None
    for key_file in (jwt.public_key, jwt.jwks_file) if jwt is not None else ():
        if key_file:
            yield f"auth.jwt key file ({key_file}): mount it next to the gateway's models.yaml"
