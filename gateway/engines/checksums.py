"""Weight checksums (``sha256:`` of an engine entry), verified before launch."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path

from adapters.errors import EngineStartError
from gateway.engines.presets import is_local_path

_CHUNK = 8 * 1024 * 1024


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def verify_checksums(engine: str, model: str, expected: Mapping[str, str]) -> None:
    """Raise ``EngineStartError`` naming the first file that is missing or differs.

    Relative file names are inside the model directory, which must then be a
    local path; absolute names are checked where they are.
    """
    if not expected:
        return
    model_dir = Path(model).expanduser()
    for name, checksum in expected.items():
        path = Path(name).expanduser()
        if not path.is_absolute():
            if not is_local_path(model):
                raise EngineStartError(
                    f"engine '{engine}': sha256 entry '{name}' is relative, but the model "
                    f"'{model}' is a hub id, not a local directory; give an absolute path"
                )
            path = model_dir / path
        if not path.is_file():
            raise EngineStartError(f"engine '{engine}': weight file {path} is missing")
        actual = file_sha256(path)
        if actual != checksum.strip().lower():
            raise EngineStartError(
                f"engine '{engine}': checksum mismatch for {path}: expected sha256 "
                f"{checksum.strip().lower()}, the file has {actual}; refusing to start"
            )
