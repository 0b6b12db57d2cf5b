"""OpenAI's Responses and Conversations APIs on top of chat completions.

Between the HTTP routes (``gateway.api``) and the router. Pure translation:
``request`` (a create request to a chat completion body), ``items`` (input
items as stored; items to chat messages), ``tools`` (tool kinds, a registry),
``output`` (a chat completion to a Response), ``stream`` (chat chunks to
Responses events). State: ``store`` (the interface, the memory LRU) and
``redis_store`` (Redis, with ``redis_failure``'s policy). ``context`` fits a
conversation to the context window. ``service`` and ``conversations`` tie them
together per request; ``relay`` streams one turn to SSE or a WebSocket;
``build`` makes it all in the app lifespan.
"""
