"""deploy/build_backend.py: the guardrails run compiled where a C compiler
was at hand, the build falls back to plain Python where none is, the
uncompiled sources pass the guardrails' tests, and an edited source is never
shadowed by its stale compiled module."""

from __future__ import annotations

import importlib
import importlib.machinery
import os
import subprocess
import sys
import tarfile
import warnings
from pathlib import Path

import pytest

from tests.deploy.uncompiled import compiled_modules
from tests.helpers import ROOT, build_backend, project_copy, wheel_files

backend = build_backend()
MODULES = list(compiled_modules())


def test_the_guardrails_run_as_installed() -> None:
    """Compiled, as every install with a C compiler builds them (CI's too),
    unless the install was told ``VLLM_GATEWAY_COMPILE=0``."""
    compile_wanted = os.environ.get("VLLM_GATEWAY_COMPILE", "1") != "0"
    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    for name in MODULES:
        module_file = str(importlib.import_module(name).__file__)
        assert module_file.endswith(suffixes) == compile_wanted, module_file


def test_without_a_c_compiler_the_build_is_plain_python(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CC", "/nonexistent/cc")
    with pytest.warns(UserWarning, match=r"no C compiler \(/nonexistent/cc\).*uncompiled"):
        assert backend.compiled_extensions() == []


def test_compile_0_builds_plain_python_quietly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VLLM_GATEWAY_COMPILE", "0")
    monkeypatch.setenv("CC", "/nonexistent/cc")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert backend.compiled_extensions() == []


def test_the_toolchain_here_is_complete() -> None:
    assert backend.missing_toolchain() is None


def test_a_source_edited_after_compiling_is_stale(tmp_path: Path) -> None:
    scan, pii = (tmp_path / path for path in backend.COMPILED[:2])
    scan.parent.mkdir(parents=True)
    for source in (scan, pii):
        source.write_text("")
        source.with_suffix(importlib.machinery.EXTENSION_SUFFIXES[0]).write_bytes(b"")
    assert backend.stale_modules(tmp_path) == []
    os.utime(scan, (scan.stat().st_atime, scan.stat().st_mtime + 5))
    assert backend.stale_modules(tmp_path) == [backend.COMPILED[0]]


def test_the_uncompiled_sources_pass_the_guardrail_tests(tmp_path: Path) -> None:
    """The guardrails' tests, the gateways they start included, on the plain
    sources (tests/deploy/uncompiled.py)."""
    reports = tmp_path / "reports"
    reports.mkdir()
    (tmp_path / "sitecustomize.py").write_text(
        f"import sys\nsys.path.insert(0, {str(ROOT)!r})\n"
        "from tests.deploy.uncompiled import prefer_sources\n"
        f"prefer_sources({str(reports)!r})\n"
    )
    pytest_args = ["tests/gateway/guardrails", "-q", "-p", "no:cacheprovider"]
    run = subprocess.run(
        [sys.executable, "-m", "pytest", *pytest_args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert " passed" in run.stdout
    processes = list(reports.iterdir())
    assert len(processes) > 1  # pytest's, and the gateways' it started
    ran_as_sources = {name for report in processes for name in report.read_text().split()}
    assert ran_as_sources == set(MODULES)


def test_a_wheel_builds_from_the_sdist(tmp_path: Path) -> None:
    """The sdist carries the backend that pyproject.toml names, so pip can
    build the package from it."""
    source = project_copy(tmp_path / "source")
    make_sdist = "import sys, build_backend; print(build_backend.build_sdist(sys.argv[1]))"
    done = subprocess.run(
        [sys.executable, "-c", make_sdist, str(tmp_path / "sdist")],
        cwd=source,
        env={**os.environ, "PYTHONPATH": str(source / "deploy")},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    with tarfile.open(tmp_path / "sdist" / done.stdout.split()[-1]) as sdist:
        sdist.extractall(tmp_path / "unpacked", filter="data")
    (unpacked,) = (tmp_path / "unpacked").iterdir()
    assert (unpacked / "deploy/build_backend.py").is_file()
    names = wheel_files(unpacked, tmp_path / "dist")
    assert set(backend.COMPILED) <= names
    assert "gateway/api/static/playground.html" in names
