"""The catalog's rows as the objects OpenAI's Files and Vector Stores APIs
return: ``file``, ``vector_store``, ``vector_store.file``,
``vector_store.files_batch``, their deletions and their list pages."""

from __future__ import annotations

import secrets
import time
from typing import Any

from adapters.errors import NotFoundError

Body = dict[str, Any]
DAY = 86_400


def new_id(prefix: str) -> str:
    """``file-...``, ``vs_...``, ``vsfb_...``: a prefix and 24 random hex digits."""
    return f"{prefix}{secrets.token_hex(12)}"


def now() -> int:
    return int(time.time())


def not_found(kind: str, object_id: str, param: str) -> NotFoundError:
    return NotFoundError(f"No {kind} found with id '{object_id}'.", param=param)


def file_object(row: Body) -> Body:
    return {
        "id": row["id"],
        "object": "file",
        "bytes": row["bytes"],
        "created_at": row["created_at"],
        "expires_at": row.get("expires_at"),
        "filename": row["filename"],
        "purpose": row["purpose"],
        "status": "processed",
        "status_details": None,
    }


def expires_at(row: Body) -> int | None:
    after = row.get("expires_after")
    if not after:
        return None
    return int(row["last_active_at"]) + int(after["days"]) * DAY


def store_object(row: Body, counts: dict[str, int], usage_bytes: int) -> Body:
    expiry = expires_at(row)
    if expiry is not None and expiry <= now():
        status = "expired"
    else:
        status = "in_progress" if counts["in_progress"] else "completed"
    return {
        "id": row["id"],
        "object": "vector_store",
        "created_at": row["created_at"],
        "name": row["name"],
        "description": row.get("description"),
        "usage_bytes": usage_bytes,
        "file_counts": counts,
        "status": status,
        "expires_after": row.get("expires_after"),
        "expires_at": expiry,
        "last_active_at": row["last_active_at"],
        "metadata": row.get("metadata") or {},
    }


def store_file_object(row: Body) -> Body:
    return {
        "id": row["file_id"],
        "object": "vector_store.file",
        "created_at": row["created_at"],
        "usage_bytes": row["usage_bytes"],
        "vector_store_id": row["store_id"],
        "status": row["status"],
        "last_error": row.get("last_error"),
        "chunking_strategy": row["chunking"],
        "attributes": row.get("attributes") or {},
    }


def batch_object(row: Body, counts: dict[str, int]) -> Body:
    if row["cancelled"]:
        status = "cancelled"
    else:
        status = "in_progress" if counts["in_progress"] else "completed"
    return {
        "id": row["id"],
        "object": "vector_store.files_batch",
        "created_at": row["created_at"],
        "vector_store_id": row["store_id"],
        "status": status,
        "file_counts": counts,
    }


def deleted(object_id: str, kind: str) -> Body:
    return {"id": object_id, "object": kind, "deleted": True}


def page(data: list[Body], has_more: bool) -> Body:
    """A cursor page as OpenAI's lists are: ``first_id``, ``last_id``, ``has_more``."""
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": has_more,
    }
