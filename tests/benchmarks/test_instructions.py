"""The instruction counter keeps working: a short count under callgrind gives
a real, positive figure per request and per stream (no speed is asserted)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.helpers import ROOT


@pytest.mark.parametrize("shape", [[], ["--stream"]])
def test_instructions_are_counted_per_request(shape: list[str]) -> None:
    command = [sys.executable, "-m", "tests.benchmarks.instructions", "plain", "--requests", "50"]
    done = subprocess.run(
        [*command, *shape], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    what = "stream" if shape else "request"
    found = re.search(rf"plain\s+([\d,]+) instructions per {what}", done.stdout)
    assert found is not None, done.stdout
    # A request through the gateway takes hundreds of thousands of instructions.
    assert 50_000 < int(found.group(1).replace(",", "")) < 50_000_000
