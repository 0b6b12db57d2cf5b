"""Configs derived from models.yaml, so that what runs elsewhere is what runs here.

``engines_as_providers`` turns each local engine into an OpenAI-compatible
provider at a given URL: used when engines run apart from the process that
routes to them (``serve --workers N``: the parent supervises the engines and
the workers reach them over loopback; compose and Kubernetes: each engine is
its own service)."""

from __future__ import annotations

from collections.abc import Mapping

from gateway.config import GatewayConfig, ModelConfig, OpenAIProviderConfig, TargetConfig
from gateway.engines.presets import default_sampling
from gateway.errors import ConfigError


def engines_as_providers(config: GatewayConfig, base_urls: Mapping[str, str]) -> GatewayConfig:
    clash = sorted(set(config.engines) & set(config.providers))
    if clash:
        raise ConfigError(
            [f"engines.{name}: a provider has the same name; rename one" for name in clash]
        )
    providers = dict(config.providers)
    for name, engine in config.engines.items():
        providers[name] = OpenAIProviderConfig(
            kind="openai", base_url=base_urls[name], timeouts=engine.timeouts
        )
    models = {name: _rewrite_model(config, model) for name, model in config.models.items()}
    return config.model_copy(update={"providers": providers, "engines": {}, "models": models})


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
        sampling = {**default_sampling(engine), **target.sampling}
        targets.append(
            target.model_copy(
                update={
                    "engine": None,
                    "provider": target.engine,
                    "model": engine.name_for_clients,
                    "sampling": sampling,
                }
            )
        )
    window = model.max_model_len or (min(windows) if windows else None)
    return model.model_copy(update={"targets": targets, "max_model_len": window})
