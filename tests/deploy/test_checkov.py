"""checkov on the Dockerfiles and on the manifests as kustomize renders them:
no failed check, and every skipped one skipped in place with its reason.

checkov pins older versions of packages the project also uses (packaging,
networkx, boto3, ...), so it lives in its own virtual environment under the
user cache, created by the first run (about 45 s from PyPI) and reused."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.conftest import DEPLOY, K8S, OVERLAYS

CHECKOV_VERSION = "3.3.30"
CHECKS_BEFORE_A_VERDICT = 100


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "vllm-gateway-ci" / f"checkov-{CHECKOV_VERSION}"


@pytest.fixture(scope="module")
def checkov() -> Path:
    venv = cache_dir()
    done = venv / ".installed"
    if not done.exists():
        shutil.rmtree(venv, ignore_errors=True)  # a half-made one from an interrupted run
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
        install = subprocess.run(
            [
                str(venv / "bin" / "python"),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                f"checkov=={CHECKOV_VERSION}",
            ],
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert install.returncode == 0, install.stderr[-3000:]
        done.write_text(CHECKOV_VERSION)
    return venv / "bin" / "checkov"


def scan(checkov: Path, directory: Path, framework: str) -> dict[str, Any]:
    # --skip-download: no calls home for guidelines (there is no network here).
    ran = subprocess.run(
        [
            str(checkov),
            "--directory",
            str(directory),
            "--framework",
            framework,
            "--output",
            "json",
            "--skip-download",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    report = json.loads(ran.stdout)
    assert ran.returncode in (0, 1), ran.stderr[-3000:]
    return dict(report)


def verdict(report: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The failed checks, and the skips that give no reason."""
    results = report["results"]
    failed = [
        f"{c['check_id']} {c['check_name']}: {c['resource']} ({c['file_path']})"
        for c in results.get("failed_checks", [])
    ]
    unexplained = [
        f"{c['check_id']}: {c['resource']}"
        for c in results.get("skipped_checks", [])
        if len(str(c["check_result"].get("suppress_comment") or "").strip()) < 10
    ]
    return failed, unexplained


def test_dockerfiles_pass_checkov(checkov: Path) -> None:
    report = scan(checkov, DEPLOY / "docker", "dockerfile")
    assert report["summary"]["passed"] >= CHECKS_BEFORE_A_VERDICT
    assert verdict(report) == ([], [])


def test_manifests_pass_checkov(checkov: Path, tmp_path: Path, overlays: dict) -> None:
    for name in OVERLAYS:
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump_all(overlays[name]))
    shutil.copytree(K8S / "examples", tmp_path / "examples")
    report = scan(checkov, tmp_path, "kubernetes")
    summary = report["summary"]
    assert summary["passed"] >= CHECKS_BEFORE_A_VERDICT and summary["parsing_errors"] == 0
    assert verdict(report) == ([], [])
    assert summary["skipped"] > 0  # the engines' in-place skips were read


def test_a_failing_manifest_is_reported(checkov: Path, tmp_path: Path, overlays: dict) -> None:
    gateway = next(
        o
        for o in overlays["gpu"]
        if o["kind"] == "Deployment" and o["metadata"]["name"] == "gateway"
    )
    container = gateway["spec"]["template"]["spec"]["containers"][0]
    container["securityContext"]["allowPrivilegeEscalation"] = True
    (tmp_path / "gateway.yaml").write_text(yaml.safe_dump(gateway))
    failed, _ = verdict(scan(checkov, tmp_path, "kubernetes"))
    assert any(line.startswith("CKV_K8S_20 ") for line in failed), failed
