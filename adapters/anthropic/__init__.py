"""``kind: anthropic``: the adapter (``adapter``), the pure OpenAI <-> Messages
API translation (``format``) and the stream translation (``stream``)."""
