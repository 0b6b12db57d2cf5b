"""deploy/compose and deploy/k8s are `vllm-gateway render`'s output for the
repository's models.yaml: rendering again changes nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gateway.render.files import MARK
from tests.deploy.conftest import DEPLOY
from tests.helpers import ROOT


def generated_files(directory: Path) -> dict[str, bytes]:
    found = {}
    for path in sorted(directory.rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            if data.startswith(MARK.encode()):
                found[path.relative_to(directory).as_posix()] = data
    return found


@pytest.mark.parametrize("kind", ["compose", "k8s"])
def test_checked_in_files_are_the_render_of_models_yaml(kind: str, tmp_path: Path) -> None:
    command = [sys.executable, "-m", "gateway", "render", kind, "models.yaml", "-o", str(tmp_path)]
    rendered = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert rendered.returncode == 0, rendered.stderr
    fresh = generated_files(tmp_path)
    checked_in = generated_files(DEPLOY / kind)
    assert fresh, "render wrote nothing"
    fix = f"run: vllm-gateway render {kind} models.yaml -o deploy/{kind}"
    assert sorted(checked_in) == sorted(fresh), fix
    stale = [name for name in fresh if fresh[name] != checked_in[name]]
    assert stale == [], fix
