"""OpenAI's Responses and Conversations APIs on top of chat completions.

Between the HTTP routes (``gateway.api``) and the router: pure translation
(``request``: a Responses request to a chat completion body; ``output``: a
chat completion to a Response object; ``stream``: chat chunks to Responses
events), the store of responses, items and conversations (``store``: memory,
``redis_store``: Redis), the context window (``context``) and the services
that tie them together (``service``, ``conversations``).
"""
