"""What the adapter tests share: vendor keys, the fake-vendor process helper,
and the vendors' SSE transcripts kept under fixtures/."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import orjson

from tests.helpers import FakeUpstream, ServerProcess, free_port

FIXTURES = Path(__file__).parent / "fixtures"
KEYS = {
    "ANTHROPIC_TEST_KEY": "sk-ant-secret-0451",
    "GEMINI_TEST_KEY": "gm-secret-0451",
    "AZURE_TEST_KEY": "az-secret-0451",
}


def transcript(name: str) -> list[dict[str, Any]]:
    """The ``data`` objects of an SSE transcript (one event per line, as on the wire)."""
    lines = (FIXTURES / name).read_text().splitlines()
    return [orjson.loads(line[len("data: ") :]) for line in lines if line.startswith("data: ")]


class FakeVendor(FakeUpstream):
    """One of tests/fakes/{anthropic,gemini,azure}_server.py in its own process
    (same control routes as the OpenAI fake: requests, reset, faults)."""

    def __init__(self, tmp: Path, module: str, *args: str) -> None:
        port = free_port()
        command = [sys.executable, "-m", f"tests.fakes.{module}", "--port", str(port), *args]
        log = tmp / f"{module}-{port}.log"
        ServerProcess.__init__(self, command, port, log, ready_path="/_requests")
        self.base_url = self.url

    def last_body(self) -> dict[str, Any]:
        return dict(self.requests()[-1]["body"])
