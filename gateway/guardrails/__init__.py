"""Guardrails: personal data masked before any backend sees it (and mapped
back for the caller), regex and model-judge policies, on requests and on
answers, streams included. ``service`` is the entry point; ``pii``, ``scan``
and ``text`` are pure text functions; ``chunks`` applies them to streamed
OpenAI chunks; ``judge`` asks a model of models.yaml through the router."""
