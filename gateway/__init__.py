"""vllm-gateway: one OpenAI-compatible endpoint in front of many LLM backends."""

__version__ = "0.1.0"
