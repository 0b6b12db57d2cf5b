"""The guardrails as a machine without a C compiler runs them: a Python
process that calls ``prefer_sources`` imports the modules
deploy/build_backend.py compiles from their ``.py`` files, and notes each
one it did so in ``report_dir`` (a file per process). A ``sitecustomize.py``
calling it makes every Python process started with it on ``PYTHONPATH`` (the
gateways a test starts too) run them uncompiled.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from tests.helpers import ROOT, build_backend


class SourceFirst(importlib.abc.MetaPathFinder):
    """Finds the modules of ``sources`` (dotted name -> path) as their ``.py``
    files, before the path finder would find them compiled."""

    def __init__(self, sources: dict[str, Path], report: Path) -> None:
        self.sources = sources
        self.report = report

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        source = self.sources.get(fullname)
        if source is None:
            return None
        with self.report.open("a") as report:
            report.write(fullname + "\n")
        return importlib.util.spec_from_file_location(fullname, source)


def compiled_modules() -> dict[str, Path]:
    """What deploy/build_backend.py compiles: dotted name -> source."""
    return {
        path.removesuffix(".py").replace("/", "."): ROOT / path for path in build_backend().COMPILED
    }


def prefer_sources(report_dir: str) -> None:
    report = Path(report_dir) / f"{os.getpid()}.txt"
    sys.meta_path.insert(0, SourceFirst(compiled_modules(), report))
