"""Local vLLM engines: presets, supervision, and tiny checkpoints for tests and the demo.

The gateway process never imports vllm: engines run as separate processes
(``python -m vllm.entrypoints.openai.api_server``) and are reached over HTTP.
"""
