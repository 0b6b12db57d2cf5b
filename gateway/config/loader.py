"""Reading models.yaml: ``${ENV}`` interpolation, validation, and errors that
name the YAML path and line, with a "did you mean" for near misses."""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, TypeAdapter, ValidationError

from adapters.config import ProviderConfig
from adapters.errors import ConfigError
from gateway.config.access import ApiKeyConfig, AuthConfig, load_jwt_keys
from gateway.config.guardrails import GuardrailConfig, ModelGuardrailConfig, ModelGuardrails
from gateway.config.schema import GatewayConfig

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")

Loc = tuple[str | int, ...]


def load_config(path: str | Path, env: Mapping[str, str] | None = None) -> GatewayConfig:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError([f"cannot read file: {exc.strerror}"], str(path)) from exc
    return parse_config(text, source=str(path), env=os.environ if env is None else env)


def parse_config(
    text: str, *, source: str = "models.yaml", env: Mapping[str, str]
) -> GatewayConfig:
    data, lines = _read_yaml(text, source)
    data = data or {}
    if not isinstance(data, dict):
        raise ConfigError(
            ["the top level must be a mapping (server, providers, models, ...)"], source
        )
    data = _interpolated(data, env, lines, source)
    try:
        config = GatewayConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe_validation(exc, lines), source) from exc
    problems = list(_cross_reference_problems(config, lines))
    if problems:
        raise ConfigError(problems, source)
    config = _with_keys_file(config, source, env)
    problems = list(_key_guardrail_problems(config, lines))
    if problems:
        raise ConfigError(problems, source)
    if config.auth is not None and config.auth.jwt is not None:
        try:
            load_jwt_keys(config.auth.jwt, Path(source).parent)
        except ValueError as exc:
            raise ConfigError([str(exc)], source) from exc
    return config


def format_loc(loc: Iterable[str | int]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _record_lines(node: yaml.Node, loc: Loc, lines: dict[Loc, int]) -> None:
    lines[loc] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = (*loc, str(key_node.value))
            _record_lines(value_node, key, lines)
            lines[key] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _record_lines(item, (*loc, index), lines)


def _line_of(loc: Loc, lines: Mapping[Loc, int]) -> str:
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return f", line {lines[loc[:end]]}"
    return ""


def _interpolate(
    value: Any, loc: Loc, env: Mapping[str, str], problems: list[str], lines: Mapping[Loc, int]
) -> Any:
    if isinstance(value, str):

        def replace(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
            problems.append(
                f"{format_loc(loc)}: environment variable {name} is not set{_line_of(loc, lines)}"
            )
            return ""

        return _ENV_REF.sub(replace, value)
    if isinstance(value, dict):
        return {k: _interpolate(v, (*loc, str(k)), env, problems, lines) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, (*loc, i), env, problems, lines) for i, v in enumerate(value)]
    return value


def _did_you_mean(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _describe_validation(exc: ValidationError, lines: Mapping[Loc, int]) -> list[str]:
    problems = []
    for error in exc.errors(include_url=False):
        # Drop pydantic's union-tag segments (e.g. 'openai') so the path is the YAML path.
        loc = _yaml_loc(error["loc"])
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = f"unknown key '{loc[-1]}'" + _did_you_mean(
                str(loc[-1]), _allowed_keys(error["loc"])
            )
        elif error["type"] == "union_tag_invalid":
            kind = str(error["input"].get("kind"))
            loc = (*loc, "kind")
            message = f"unknown kind '{kind}'{_did_you_mean(kind, _kinds(loc[0]))}; " + (
                f"expected one of {error['ctx']['expected_tags']}"
            )
        problems.append(f"{format_loc(loc)}: {message}{_line_of(loc, lines)}")
    return problems


def _yaml_loc(loc: tuple[Any, ...]) -> Loc:
    """Drop pydantic's union-tag segment (a provider's or guardrail's ``kind``)
    so the path is the YAML path."""
    parts: list[str | int] = []
    for index, part in enumerate(loc):
        if index == 2 and part in _kinds(loc[0]):
            continue
        parts.append(part)
    return tuple(parts)


# Sections of named entries discriminated on ``kind``, and their union type.
_KIND_UNIONS: dict[str, Any] = {"providers": ProviderConfig, "guardrails": GuardrailConfig}


def _kinds(section: Any) -> dict[str, type[BaseModel]]:
    union = _KIND_UNIONS.get(section)
    if union is None:
        return {}
    variants = get_args(get_args(union)[0]) or (get_args(union)[0],)
    return {get_args(v.model_fields["kind"].annotation)[0]: v for v in variants}


def _allowed_keys(raw_loc: tuple[Any, ...]) -> list[str]:
    """Field names of the model that held an unknown key, for the near-miss hint."""
    current: Any = GatewayConfig
    for part in raw_loc[:-1]:
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            current = field.annotation if field else None
        elif get_origin(current) in (dict, list):
            current = get_args(current)[-1]
        elif get_origin(current) is Annotated:
            section = "guardrails" if current is GuardrailConfig else "providers"
            current = _kinds(section).get(str(part))
        while get_origin(current) in (Union, UnionType):
            current = next(a for a in get_args(current) if a is not type(None))
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _cross_reference_problems(config: GatewayConfig, lines: Mapping[Loc, int]) -> Iterable[str]:
    if config.state.backend == "redis" and config.redis_url is None:
        loc: Loc = ("state", "backend")
        needs = "'redis' needs redis_url (the Redis the replicas share)"
        yield f"{format_loc(loc)}: {needs}{_line_of(loc, lines)}"
    for name, model in config.models.items():
        for index, target in enumerate(model.targets):
            if target.provider is not None and target.provider not in config.providers:
                loc = ("models", name, "targets", index, "provider")
                yield (
                    f"{format_loc(loc)}: unknown provider '{target.provider}'"
                    f"{_did_you_mean(target.provider, config.providers)}{_line_of(loc, lines)}"
                )
            if target.engine is not None and target.engine not in config.engines:
                loc = ("models", name, "targets", index, "engine")
                yield (
                    f"{format_loc(loc)}: unknown engine '{target.engine}'"
                    f"{_did_you_mean(target.engine, config.engines)}{_line_of(loc, lines)}"
                )
        for index, fallback in enumerate(model.fallbacks):
            if fallback not in config.models or fallback == name:
                loc = ("models", name, "fallbacks", index)
                reason = (
                    "a model cannot fall back to itself"
                    if fallback == name
                    else (f"unknown model '{fallback}'{_did_you_mean(fallback, config.models)}")
                )
                yield f"{format_loc(loc)}: {reason}{_line_of(loc, lines)}"
    yield from _guardrail_and_cache_problems(config, lines)


def _attached_problems(
    attached: ModelGuardrails | None,
    prefix: Loc,
    guardrails: Mapping[str, GuardrailConfig],
    lines: Mapping[Loc, int],
) -> Iterable[str]:
    """Guardrail names a model or a key attaches that no guardrail has, and
    model judges attached to answers."""
    for stage in ("input", "output"):
        for index, guard in enumerate(getattr(attached, stage) if attached else ()):
            loc: Loc = (*prefix, "guardrails", stage, index)
            found = guardrails.get(guard)
            if found is None:
                yield (
                    f"{format_loc(loc)}: unknown guardrail '{guard}'"
                    f"{_did_you_mean(guard, guardrails)}{_line_of(loc, lines)}"
                )
            elif stage == "output" and isinstance(found, ModelGuardrailConfig):
                yield (
                    f"{format_loc(loc)}: '{guard}' is a model guardrail, which checks "
                    f"requests only (use it under input){_line_of(loc, lines)}"
                )


def _key_guardrail_problems(config: GatewayConfig, lines: Mapping[Loc, int]) -> Iterable[str]:
    for index, key in enumerate(config.auth.keys if config.auth else ()):
        prefix: Loc = ("auth", "keys", index)
        yield from _attached_problems(key.guardrails, prefix, config.guardrails, lines)


def _guardrail_and_cache_problems(config: GatewayConfig, lines: Mapping[Loc, int]) -> Iterable[str]:
    """Guardrail names a model attaches, the judges' and the semantic cache's
    models, and the Redis a Redis cache needs."""

    def unknown(loc: Loc, what: str, name: str, choices: Iterable[str]) -> str:
        hint = _did_you_mean(name, choices)
        return f"{format_loc(loc)}: unknown {what} '{name}'{hint}{_line_of(loc, lines)}"

    for name, model in config.models.items():
        yield from _attached_problems(model.guardrails, ("models", name), config.guardrails, lines)
    for name, guard in config.guardrails.items():
        if isinstance(guard, ModelGuardrailConfig) and guard.model not in config.models:
            yield unknown(("guardrails", name, "model"), "model", guard.model, config.models)
    cache = config.cache
    if cache is not None and cache.semantic is not None:
        embedder = cache.semantic.embedding_model
        if embedder not in config.models:
            where: Loc = ("cache", "semantic", "embedding_model")
            yield unknown(where, "model", embedder, config.models)
    if cache is not None and cache.backend == "redis" and config.redis_url is None:
        loc: Loc = ("cache", "backend")
        yield f"{format_loc(loc)}: the redis backend needs 'redis_url'{_line_of(loc, lines)}"
    knowledge = config.knowledge
    if knowledge is not None and knowledge.embedding_model not in config.models:
        where = ("knowledge", "embedding_model")
        yield unknown(where, "model", knowledge.embedding_model, config.models)


# ---- auth: model names and the keys file ------------------------------------

_GLOB_CHARS = frozenset("*?[")


def _unknown_model_problems(
    keys: Iterable[ApiKeyConfig], prefix: Loc, models: Mapping[str, Any], lines: Mapping[Loc, int]
) -> Iterable[str]:
    """Plain model names (not globs) a key names that no public model has: typos."""
    for index, key in enumerate(keys):
        for position, name in enumerate(key.models):
            if name not in models and not _GLOB_CHARS.intersection(name):
                loc: Loc = (*prefix, index, "models", position)
                yield (
                    f"{format_loc(loc)}: unknown model '{name}'"
                    f"{_did_you_mean(name, models)}{_line_of(loc, lines)}"
                )


def config_warnings(config: GatewayConfig) -> list[str]:
    """What loads but is likely a mistake: shown by ``check`` and logged at startup.

    A key naming a model that does not exist (it only narrows that key), and a
    key_sha256 that is not a whole digest (that key can never match)."""
    if config.auth is None:
        return []
    warnings = [
        f"auth.limits.{name}: unknown model '{name}'{_did_you_mean(name, config.models)}"
        for name in config.auth.limits
        if name not in config.models
    ]
    warnings.extend(_unknown_model_problems(config.auth.keys, ("auth", "keys"), config.models, {}))
    for key in [*config.auth.keys, *config.auth.admin_keys]:
        if not key.usable:
            warnings.append(
                f"key '{key.name}': key_sha256 is not the 64 hex digits of a sha256;"
                " this key can never match"
            )
    return warnings


def _with_keys_file(config: GatewayConfig, source: str, env: Mapping[str, str]) -> GatewayConfig:
    """The config with the keys of ``auth.keys_file`` (relative to the config's folder) added."""
    auth = config.auth
    if auth is None or auth.keys_file is None:
        return config
    path = Path(source).parent / auth.keys_file
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError([f"auth.keys_file: cannot read {path}: {exc.strerror}"], source) from exc
    keys = _parse_keys_file(text, str(path), env)
    fields = {name: getattr(auth, name) for name in AuthConfig.model_fields}
    try:
        merged = AuthConfig(**{**fields, "keys": [*auth.keys, *keys]})
    except ValidationError as exc:
        problems = [f"auth (with {path}): {e['msg']}" for e in exc.errors(include_url=False)]
        raise ConfigError(problems, source) from exc
    return config.model_copy(update={"auth": merged})


def _read_yaml(text: str, source: str) -> tuple[Any, dict[Loc, int]]:
    """The document, and the line of every key path in it (parsed once)."""
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        data = None if root is None else loader.construct_document(root)
    except yaml.YAMLError as exc:
        raise ConfigError([f"not valid YAML: {exc}"], source) from exc
    finally:
        loader.dispose()
    lines: dict[Loc, int] = {}
    if root is not None:
        _record_lines(root, (), lines)
    return data, lines


def _interpolated(data: Any, env: Mapping[str, str], lines: dict[Loc, int], source: str) -> Any:
    """``${VAR}`` references replaced from ``env``; every missing one is a problem."""
    problems: list[str] = []
    data = _interpolate(data, (), env, problems, lines)
    if problems:
        raise ConfigError(problems, source)
    return data


def _parse_keys_file(text: str, source: str, env: Mapping[str, str]) -> list[ApiKeyConfig]:
    data, lines = _read_yaml(text, source)
    data = data or []
    if not isinstance(data, list):
        raise ConfigError(["the top level must be a list of keys (name, key, models, ...)"], source)
    data = _interpolated(data, env, lines, source)
    try:
        keys = TypeAdapter(list[ApiKeyConfig]).validate_python(data)
    except ValidationError as exc:
        problems: list[str] = []
        for error in exc.errors(include_url=False):
            loc = tuple(error["loc"])
            message = error["msg"]
            if error["type"] == "extra_forbidden":
                message = f"unknown key '{loc[-1]}'" + _did_you_mean(
                    str(loc[-1]), ApiKeyConfig.model_fields
                )
            problems.append(f"{format_loc(loc)}: {message}{_line_of(loc, lines)}")
        raise ConfigError(problems, source) from exc
    return keys
