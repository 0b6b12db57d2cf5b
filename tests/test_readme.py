"""README.md's two commands are the project's contract with a new user and with CI."""

from __future__ import annotations

import re

from tests.helpers import ROOT


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    return [line for block in blocks[:2] for line in block.splitlines() if not line.startswith("#")]


def test_ci_runs_exactly_the_readme_test_command() -> None:
    _, test = readme_commands()
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test in ci_lines
    assert test.endswith("python -m pytest")


def test_first_command_serves_the_demo() -> None:
    serve, _ = readme_commands()
    assert serve.endswith("vllm-gateway serve --demo")
