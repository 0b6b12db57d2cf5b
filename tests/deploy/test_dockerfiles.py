"""deploy/docker: hadolint finds nothing, base images are pinned by tag, and
each image runs as a non-root user with a HEALTHCHECK."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.deploy.conftest import DEPLOY, tool

DOCKERFILES = sorted((DEPLOY / "docker").glob("Dockerfile*"))


def final_stage(path: Path) -> str:
    text = path.read_text()
    return text[text.rindex("\nFROM ") :]


def test_there_are_three_images() -> None:
    assert [p.name for p in DOCKERFILES] == ["Dockerfile", "Dockerfile.cpu", "Dockerfile.gpu"]


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint_is_clean(dockerfile: Path) -> None:
    linted = subprocess.run(
        [tool("hadolint"), "--format", "json", "--failure-threshold", "style", str(dockerfile)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert json.loads(linted.stdout or "[]") == [], linted.stdout
    assert linted.returncode == 0


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_pinned_non_root_and_health_checked(dockerfile: Path) -> None:
    text = dockerfile.read_text()
    for image in re.findall(r"^FROM (\S+)", text, flags=re.MULTILINE):
        tag = image.partition(":")[2]
        assert tag and tag != "latest", image
    final = final_stage(dockerfile)
    users = re.findall(r"^USER (\S+)", final, flags=re.MULTILINE)
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    assert re.search(r"^HEALTHCHECK [^\n]*\\\n\s*CMD .*/health", final, flags=re.MULTILINE)
    assert "models.yaml" in text  # mounted, never copied in
    assert not re.search(r"^COPY .*models\.yaml", text, flags=re.MULTILINE)


def test_cpu_image_drops_the_vision_and_audio_packages() -> None:
    text = (DEPLOY / "docker" / "Dockerfile.cpu").read_text()
    assert "pip uninstall -y torchvision torchaudio torchcodec" in text
    assert '"serve", "--demo"' in text


def test_gateway_image_is_multi_stage() -> None:
    text = (DEPLOY / "docker" / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", text, flags=re.MULTILINE)) == 2
    assert "COPY --from=build /opt/venv /opt/venv" in text
