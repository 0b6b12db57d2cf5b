"""An engine's log file as the supervisor reads it: loading progress while it
starts, the engine's pid, and the last lines for a failure report."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from gateway.engines.reaper import PID_MARKER

# vLLM log lines that mark a loading phase, and what the operator is told.
# Informational only: if vLLM rewords a line, that phase is just not shown.
PHASES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"Resolved architecture: (\S+)"), "resolved architecture {0}"),
    (re.compile(r"Starting to load model"), "loading weights"),
    (re.compile(r"Loading weights took ([\d.]+) ?s"), "weights loaded in {0}s"),
    (re.compile(r"init engine .* took ([\d.]+) ?s"), "KV cache allocated, warm-up done in {0}s"),
    (re.compile(r"Starting vLLM (?:API )?server on"), "starting the HTTP server"),
)
_PID = re.compile(re.escape(PID_MARKER) + r" (\d+)")
# Values of secret-looking arguments that vLLM echoes in its "non-default args" line.
_SECRET_ARG = re.compile(r"('[a-z_]*(?:key|token|secret)':\s*)(\[[^\]]*\]|'[^']*')")
# A flag whose value is a secret (--api-key, --hf-token; not --tokenizer or
# --max-num-batched-tokens), and such a flag with its value in free text.
_SECRET_FLAG_NAME = r"--(?:\w+-)*(?:key|token|secret|password)(?:-\w+)*"
_SECRET_FLAG = re.compile(rf"({_SECRET_FLAG_NAME})(=|\s+)(?!-)[^\s\]]+", re.I)
# Environment variables that hold credentials: HF_TOKEN, OPENAI_API_KEY, PGPASSWORD, ...
_SECRET_VARIABLE = re.compile(
    r"(?:^|_)(?:KEY|TOKEN|SECRET|CREDENTIALS?)(?:_|$)|PASSW(?:OR)?D|APIKEY"
)
_SHORTEST_MASKED = 6  # shorter values ("1", "true") would mask ordinary words


def redact(line: str, secrets: Collection[str] = ()) -> str:
    """The line with secret-looking arguments masked, and each of ``secrets``."""
    line = _SECRET_FLAG.sub(r"\1\2***", _SECRET_ARG.sub(r"\1'***'", line))
    for secret in secrets:
        line = line.replace(secret, "***")
    return line


def secret_values(extra_args: Sequence[str], env: Mapping[str, str]) -> list[str]:
    """What an engine is given that must never be shown, longest first: the
    values of its secret flags and secret-looking environment variables (the
    gateway's own included: engines inherit them)."""
    found = set()
    for index, token in enumerate(extra_args):
        name, equals, value = token.partition("=")
        if not re.fullmatch(_SECRET_FLAG_NAME, name, re.I):
            continue
        if equals:
            found.add(value)
        elif index + 1 < len(extra_args):
            found.add(extra_args[index + 1])
    found |= {value for name, value in env.items() if _SECRET_VARIABLE.search(name.upper())}
    return sorted((v for v in found if len(v) >= _SHORTEST_MASKED), key=len, reverse=True)


def redact_argv(argv: list[str]) -> list[str]:
    """The command line for logs: values of key/token/secret flags masked."""
    out = list(argv)
    for index, token in enumerate(out):
        name = token.split("=", 1)[0].lower()
        if name.startswith("--") and any(w in name for w in ("key", "token", "secret")):
            if "=" in token:
                out[index] = f"{token.split('=', 1)[0]}=***"
            elif index + 1 < len(out):
                out[index + 1] = "***"
    return out


@dataclass(slots=True)
class LogFollower:
    """Reads what an engine appended to its log since the last call."""

    path: Path
    offset: int = 0
    _partial: str = ""

    def start_at_end(self) -> None:
        self.offset = self.path.stat().st_size if self.path.exists() else 0
        self._partial = ""

    def new_lines(self) -> list[str]:
        try:
            with self.path.open("rb") as stream:
                stream.seek(self.offset)
                data = stream.read()
        except OSError:
            return []
        self.offset += len(data)
        text = self._partial + data.decode(errors="replace")
        lines = text.split("\n")
        self._partial = lines.pop()
        return lines


def progress_events(lines: list[str]) -> Iterator[tuple[str, str]]:
    """("pid", "<pid>") and ("phase", "<description>") found in new log lines."""
    for line in lines:
        pid = _PID.search(line)
        if pid:
            yield "pid", pid.group(1)
            continue
        for pattern, description in PHASES:
            match = pattern.search(line)
            if match:
                yield "phase", description.format(*match.groups())
                break


_EXCEPTION = re.compile(r"\b(?:[A-Za-z_][\w.]*(?:Error|Exception)|ValueError): .+")


def last_error(lines: list[str]) -> str | None:
    """The last exception message in log lines ("ValueError: ..."), if any."""
    for line in reversed(lines):
        match = _EXCEPTION.search(line)
        if match:
            return match.group(0)
    return None


def tail(
    path: Path, lines: int = 20, max_bytes: int = 64 * 1024, secrets: Collection[str] = ()
) -> list[str]:
    """The last ``lines`` lines of the log, secret-looking values and ``secrets`` masked."""
    try:
        with path.open("rb") as stream:
            stream.seek(0, 2)
            size = stream.tell()
            stream.seek(max(0, size - max_bytes))
            data = stream.read()
    except OSError:
        return []
    text = data.decode(errors="replace").replace("\r", "\n")
    kept = [line for line in text.split("\n") if line.strip()]
    return [redact(line, secrets) for line in kept[-lines:]]
