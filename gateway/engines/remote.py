"""Configs derived from models.yaml, so that what runs elsewhere is what runs here.

``engines_as_providers`` turns each local engine replica into an
OpenAI-compatible provider at a given URL, and an ``{engine: name}`` target
into one provider target per replica: used when engines run apart from the
process that routes to them (``serve --workers N``: the parent supervises
the engines and the workers reach them over loopback).
``engines_as_providers_data`` turns each engine into one provider on the raw
YAML data, before ``${ENV}`` interpolation, so that a rendered config keeps
its secrets as references (``vllm-gateway render``: each engine is one
service, whose replicas its load balancer spreads requests over)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adapters.config import OpenAIProviderConfig
from adapters.errors import ConfigError
from gateway.config.schema import EngineConfig, GatewayConfig, ModelConfig, TargetConfig
from gateway.engines.handle import replica_names
from gateway.engines.presets import default_sampling


def engines_as_providers(config: GatewayConfig, base_urls: Mapping[str, str]) -> GatewayConfig:
    """``base_urls``: by replica name (``gateway.engines.handle.replica_names``)."""
    replicas = {name: replica_names(name, engine) for name, engine in config.engines.items()}
    _refuse_clashes({r: None for names in replicas.values() for r in names}, config.providers)
    providers = dict(config.providers)
    for name, engine in config.engines.items():
        for replica in replicas[name]:
            providers[replica] = OpenAIProviderConfig(
                kind="openai",
                base_url=base_urls[replica],
                timeouts=engine.timeouts,
                rename_reasoning=True,  # as the local engine adapter does
                continuation=True,
            )
    models = {name: _rewrite_model(config, model) for name, model in config.models.items()}
    return config.model_copy(update={"providers": providers, "engines": {}, "models": models})


def engines_as_providers_data(
    data: Mapping[str, Any], engines: Mapping[str, EngineConfig], base_urls: Mapping[str, str]
) -> dict[str, Any]:
    """``engines_as_providers`` on models.yaml's raw data; ``engines`` are its
    validated engine entries. Keys keep their order; other values are untouched."""
    raw_providers: Mapping[str, Any] = data.get("providers") or {}
    _refuse_clashes(engines, raw_providers)
    raw_engines: Mapping[str, Any] = data.get("engines") or {}
    providers = dict(raw_providers)
    for name in engines:
        provider: dict[str, Any] = {
            "kind": "openai",
            "base_url": base_urls[name],
            "rename_reasoning": True,  # as the local engine adapter does
            "continuation": True,
        }
        if "timeouts" in raw_engines[name]:
            provider["timeouts"] = raw_engines[name]["timeouts"]
        providers[name] = provider
    models = {
        name: _rewrite_model_data(model, engines)
        for name, model in (data.get("models") or {}).items()
    }
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key == "engines":
            continue
        if key == "models" and "providers" not in data:
            out["providers"] = providers
        out[key] = {"providers": providers, "models": models}.get(key, value)
    out.setdefault("providers", providers)
    return out


def engine_target_update(name: str, engine: EngineConfig, sampling: Mapping[str, Any]) -> dict:
    """What a target ``{engine: name}`` becomes once that engine is a provider:
    the served model name, and the family's sampling defaults made explicit."""
    return {
        "engine": None,
        "provider": name,
        "name": f"engine/{name}",  # the name it has when the gateway runs it
        "model": engine.name_for_clients,
        "sampling": {**default_sampling(engine), **sampling},
    }


def _refuse_clashes(engines: Mapping[str, Any], providers: Mapping[str, Any]) -> None:
    clash = sorted(set(engines) & set(providers))
    if clash:
        raise ConfigError(
            [f"engines.{name}: a provider has the same name; rename one" for name in clash]
        )


def _rewrite_model(config: GatewayConfig, model: ModelConfig) -> ModelConfig:
    targets: list[TargetConfig] = []
    windows: list[int] = []
    for target in model.targets:
        if target.engine is None:
            targets.append(target)
            continue
        engine = config.engines[target.engine]
        if engine.max_model_len is not None:
            windows.append(engine.max_model_len)
        for replica in replica_names(target.engine, engine):
            update = engine_target_update(replica, engine, target.sampling)
            targets.append(target.model_copy(update=update))
    window = model.max_model_len or (min(windows) if windows else None)
    return model.model_copy(update={"targets": targets, "max_model_len": window})


def _rewrite_model_data(model: Mapping[str, Any], engines: Mapping[str, EngineConfig]) -> dict:
    targets: list[dict[str, Any]] = []
    windows: list[int] = []
    for target in model.get("targets") or []:
        name = target.get("engine")
        if name is None:
            targets.append(target)
            continue
        engine = engines[name]
        if engine.max_model_len is not None:
            windows.append(engine.max_model_len)
        update = engine_target_update(name, engine, target.get("sampling") or {})
        rewritten = {
            "provider": update["provider"],
            "model": update["model"],
            "name": update["name"],
        }
        rewritten.update((k, v) for k, v in target.items() if k not in ("engine", "sampling"))
        if update["sampling"]:
            rewritten["sampling"] = update["sampling"]
        targets.append(rewritten)
    out = {**model, "targets": targets}
    if out.get("max_model_len") is None and windows:
        out["max_model_len"] = min(windows)
    return out
