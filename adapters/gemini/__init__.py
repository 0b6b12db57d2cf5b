"""``kind: gemini``: the adapter (``adapter``), the pure OpenAI <-> Gemini
translation of chat (``format``), streams (``stream``) and embeddings
(``embeddings``)."""
