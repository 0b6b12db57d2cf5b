"""The HTTP server: the app and its lifespan, middlewares, routes per endpoint
family, the SSE relay, the OpenAI wire models, and the process runner."""
