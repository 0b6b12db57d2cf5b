"""``vllm-gateway render compose|k8s models.yaml -o DIR``: deployment files
generated from the one models.yaml, so what runs in a cluster is what runs
locally. Engines become their own ``vllm serve`` services (with the flags the
gateway itself would start them with), and the gateway's config is rewritten
to reach them by service name. deploy/compose and deploy/k8s are this
output for the repository's models.yaml.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Literal

from gateway.render.compose import render_compose
from gateway.render.files import write_tree
from gateway.render.k8s import render_k8s
from gateway.render.source import Deployment, load_deployment

Kind = Literal["compose", "k8s"]
RENDERERS: dict[str, Callable[[Deployment], dict[str, str]]] = {
    "compose": render_compose,
    "k8s": render_k8s,
}


def render(kind: Kind, source: Path, out_dir: Path) -> tuple[list[Path], list[str]]:
    """Write the files; return them and the warnings (files to mount by hand)."""
    deployment = load_deployment(source)
    written = write_tree(out_dir, RENDERERS[kind](deployment))
    return written, deployment.warnings


__all__ = ["RENDERERS", "Kind", "render"]
