"""The HTTP routes, one module per endpoint family. Each route parses, calls
the router (or the service behind its family) and serializes; nothing else."""

from __future__ import annotations

from aiohttp import web

from gateway.api.routes.admin import add_admin_routes
from gateway.api.routes.conversations import add_conversation_routes
from gateway.api.routes.files import add_file_routes
from gateway.api.routes.inference import add_inference_routes
from gateway.api.routes.models import add_model_routes
from gateway.api.routes.operator import add_operator_routes
from gateway.api.routes.pages import add_page_routes
from gateway.api.routes.probes import add_probe_routes
from gateway.api.routes.responses import add_responses_routes
from gateway.api.routes.responses_ws import add_websocket_routes
from gateway.api.routes.vector_stores import add_vector_store_routes


def add_routes(app: web.Application) -> None:
    add_inference_routes(app)
    add_responses_routes(app)
    add_websocket_routes(app)
    add_conversation_routes(app)
    add_file_routes(app)
    add_vector_store_routes(app)
    add_model_routes(app)
    add_probe_routes(app)
    add_admin_routes(app)
    add_operator_routes(app)
    add_page_routes(app)
