"""The package's build backend: setuptools', with the guardrails' scanning
modules compiled to C by mypyc.

pyproject.toml names this module (``backend-path = ["deploy"]``). Building a
wheel or an editable install (``pip install -e .``) compiles ``COMPILED``: the
``pii`` guardrail reads every prompt and answer, and compiled it costs about a
quarter fewer instructions a request (README, Performance). The modules stay
plain, typed Python: without a C compiler, or with ``VLLM_GATEWAY_COMPILE=0``,
the same package is built uncompiled, only slower.

An editable install puts each compiled module beside its source, and Python
imports the compiled one first: after editing one of ``COMPILED``, install
again (``tests/conftest.py`` refuses to test a stale one).
"""

from __future__ import annotations

import importlib.machinery
import os
import shutil
import sys
import sysconfig
import warnings
from pathlib import Path
from typing import Any

from setuptools import build_meta, setup
from setuptools.command.sdist import sdist

COMPILED = (
    "gateway/guardrails/scan.py",
    "gateway/guardrails/pii.py",
    "gateway/guardrails/text.py",
    "gateway/guardrails/texts.py",
    "gateway/guardrails/service.py",
    "gateway/guardrails/chunks.py",
    "gateway/guardrails/marks.py",
)
# mypy's reading of them for mypyc. Not the project's [tool.mypy]: its pydantic
# plugin is not in the build environment. Modules outside COMPILED are read
# for their types only (or are Any when not installed here).
_MYPY_FLAGS = ("--config-file=", "--follow-imports=silent", "--ignore-missing-imports")
# The setup.py commands that build the package's files (metadata needs none).
_BUILDING = {"bdist_wheel", "editable_wheel"}
# This module, as pyproject.toml's backend-path finds it from the project's root.
_BACKEND = "deploy/build_backend.py"


def missing_toolchain() -> str | None:
    """What a C build lacks here (the compiler setuptools would run, or
    Python's headers), or None."""
    compiler = (os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(compiler) is None:
        return f"no C compiler ({compiler})"
    headers = Path(sysconfig.get_paths()["include"], "Python.h")
    if not headers.is_file():
        return f"no Python headers ({headers})"
    return None


def compiled_extensions() -> list[Any]:
    """The C extensions of ``COMPILED`` (none when they cannot be built here)."""
    if os.environ.get("VLLM_GATEWAY_COMPILE", "1") == "0":
        return []
    missing = missing_toolchain()
    if missing is not None:
        warnings.warn(f"{missing}: the guardrails are installed uncompiled", stacklevel=1)
        return []
    from mypyc.build import mypycify

    return list(mypycify([*_MYPY_FLAGS, *COMPILED], opt_level="3", group_name="vllm_gateway"))


def stale_modules(root: Path) -> list[str]:
    """The sources of ``COMPILED`` under ``root`` changed since they were
    compiled there (an editable install's), which Python would not run."""
    stale = []
    for source in COMPILED:
        path = root / source
        built = [path.with_suffix(suffix) for suffix in importlib.machinery.EXTENSION_SUFFIXES]
        times = [b.stat().st_mtime for b in built if b.is_file()]
        if times and max(times) < path.stat().st_mtime:
            stale.append(source)
    return stale


class _Sdist(sdist):
    """setuptools' sdist, carrying this backend: a wheel is built from an
    sdist with it."""

    def make_distribution(self) -> None:
        self.filelist.append(_BACKEND)
        super().make_distribution()


class _Backend(build_meta._BuildMetaBackend):
    def run_setup(self, setup_script: str = "setup.py") -> None:
        # setuptools runs this (its setup.py stand-in) with the command in sys.argv.
        building = not _BUILDING.isdisjoint(sys.argv)
        setup(
            ext_modules=compiled_extensions() if building else [],
            cmdclass={"sdist": _Sdist},
        )


_backend = _Backend()
get_requires_for_build_wheel = _backend.get_requires_for_build_wheel
get_requires_for_build_sdist = _backend.get_requires_for_build_sdist
get_requires_for_build_editable = _backend.get_requires_for_build_editable
prepare_metadata_for_build_wheel = _backend.prepare_metadata_for_build_wheel
prepare_metadata_for_build_editable = _backend.prepare_metadata_for_build_editable
build_wheel = _backend.build_wheel
build_sdist = _backend.build_sdist
build_editable = _backend.build_editable
