"""What the deployment checks share: the deploy/ tree, kustomize builds, and
the tools the checks run (installed by .ci/run through the [test] extra)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import ROOT

DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
OVERLAYS = ("cpu", "gpu")
# The Kubernetes release the objects are validated against.
KUBERNETES_VERSION = "1.32.0"


def tool(name: str) -> str:
    """A command-line tool: beside this Python (a pip-installed one), else on PATH."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    assert found, f"{name} is not installed"
    return found


def kustomize(path: Path) -> list[dict[str, Any]]:
    built = subprocess.run(
        [tool("kubectl"), "kustomize", str(path)], capture_output=True, text=True, timeout=60
    )
    assert built.returncode == 0, built.stderr
    return [doc for doc in yaml.safe_load_all(built.stdout) if doc]


def find(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    matches = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} found"
    return matches[0]


@pytest.fixture(scope="session")
def overlays() -> dict[str, list[dict[str, Any]]]:
    """Every overlay of deploy/k8s as `kubectl kustomize` renders it."""
    return {name: kustomize(K8S / "overlays" / name) for name in OVERLAYS}
