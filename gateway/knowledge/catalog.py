"""The catalog: files, vector stores, their files and batches, in SQLite.

One database file in ``files_dir`` beside the blobs, so a restart keeps
everything. Every row carries its owner, and every lookup by id names the
owner too: another caller's object is not found. Listings are cursor pages
in creation order (``rowid``). A vector store's ``file_counts`` and usage are
computed from its files' rows when read, so they are always current.

The methods are synchronous and run on the ``Catalog``'s one thread
(``call``): the event loop never waits on the disk, and one connection
serializes the writes.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import orjson

Row = dict[str, Any]
T = TypeVar("T")
Cursor = tuple[str, str, tuple[Any, ...]]
JSON_COLUMNS = frozenset({"metadata", "expires_after", "chunking", "last_error", "attributes"})
STATUSES = ("in_progress", "completed", "failed", "cancelled")

SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    id TEXT PRIMARY KEY, owner TEXT NOT NULL, filename TEXT NOT NULL, purpose TEXT NOT NULL,
    bytes INTEGER NOT NULL, created_at INTEGER NOT NULL, expires_at INTEGER
);
CREATE INDEX IF NOT EXISTS files_owner ON files (owner);
CREATE TABLE IF NOT EXISTS vector_stores (
    id TEXT PRIMARY KEY, owner TEXT NOT NULL, name TEXT NOT NULL, description TEXT,
    created_at INTEGER NOT NULL, last_active_at INTEGER NOT NULL, metadata TEXT NOT NULL,
    expires_after TEXT, chunking TEXT
);
CREATE INDEX IF NOT EXISTS vector_stores_owner ON vector_stores (owner);
CREATE TABLE IF NOT EXISTS store_files (
    store_id TEXT NOT NULL, file_id TEXT NOT NULL, owner TEXT NOT NULL,
    created_at INTEGER NOT NULL, status TEXT NOT NULL, usage_bytes INTEGER NOT NULL DEFAULT 0,
    last_error TEXT, attributes TEXT NOT NULL, chunking TEXT NOT NULL, batch_id TEXT,
    chunks INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (store_id, file_id)
);
CREATE INDEX IF NOT EXISTS store_files_file ON store_files (file_id);
CREATE INDEX IF NOT EXISTS store_files_batch ON store_files (batch_id);
CREATE TABLE IF NOT EXISTS batches (
    id TEXT PRIMARY KEY, store_id TEXT NOT NULL, owner TEXT NOT NULL,
    created_at INTEGER NOT NULL, cancelled INTEGER NOT NULL DEFAULT 0
);
"""


def _encode(row: Row) -> Row:
    return {
        k: orjson.dumps(v) if k in JSON_COLUMNS and v is not None else v for k, v in row.items()
    }


def _decode(row: sqlite3.Row | None) -> Row | None:
    if row is None:
        return None
    return {
        k: orjson.loads(row[k]) if k in JSON_COLUMNS and row[k] is not None else row[k]
        for k in row.keys()  # noqa: SIM118 - sqlite3.Row is not iterable by key
    }


class Catalog:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="knowledge-catalog")

    async def call(self, method: Callable[..., T], *args: Any) -> T:
        """Run one of this catalog's methods on its thread."""
        return await asyncio.get_running_loop().run_in_executor(self._thread, method, *args)

    def close(self) -> None:
        self._thread.shutdown(wait=True)
        self._db.close()

    # ---- generic -------------------------------------------------------------

    def _one(self, sql: str, *args: Any) -> Row | None:
        return _decode(self._db.execute(sql, args).fetchone())

    def _all(self, sql: str, *args: Any) -> list[Row]:
        return [row for row in map(_decode, self._db.execute(sql, args).fetchall()) if row]

    def _insert(self, table: str, row: Row, replace: bool = False) -> None:
        encoded = _encode(row)
        columns = ", ".join(encoded)
        marks = ", ".join("?" for _ in encoded)
        verb = "INSERT OR REPLACE" if replace else "INSERT"
        self._db.execute(
            f"{verb} INTO {table} ({columns}) VALUES ({marks})", list(encoded.values())
        )

    def _page(
        self,
        table: str,
        where: str,
        args: tuple[Any, ...],
        cursor: Cursor | None,
        limit: int,
        order: str,
    ) -> tuple[list[Row], bool]:
        """Rows of ``table`` matching ``where``, in creation order, from a cursor:
        (``after`` | ``before``, the condition that finds the cursor's row, its args).
        A cursor no row matches starts nowhere: an empty page."""
        direction = "DESC" if order == "desc" else "ASC"
        if cursor is not None:
            which, condition, found = cursor
            forward = (which == "after") == (order == "asc")
            where += (
                f" AND rowid {'>' if forward else '<'} "
                f"(SELECT rowid FROM {table} WHERE {condition})"
            )
            args = (*args, *found)
            if which == "before":
                direction = "ASC" if order == "desc" else "DESC"
        rows = self._all(
            f"SELECT * FROM {table} WHERE {where} ORDER BY rowid {direction} LIMIT ?",
            *args,
            limit + 1,
        )
        more = len(rows) > limit
        rows = rows[:limit]
        if cursor is not None and cursor[0] == "before":
            rows.reverse()
        return rows, more

    # ---- files -----------------------------------------------------------------

    def add_file(self, row: Row) -> None:
        self._insert("files", row)

    def get_file(self, owner: str, file_id: str) -> Row | None:
        return self._one("SELECT * FROM files WHERE id = ? AND owner = ?", file_id, owner)

    def list_files(
        self, owner: str, purpose: str | None, after: str | None, limit: int, order: str
    ) -> tuple[list[Row], bool]:
        where, args = "owner = ?", [owner]
        if purpose is not None:
            where, args = where + " AND purpose = ?", [owner, purpose]
        cursor = None if after is None else ("after", "id = ?", (after,))
        return self._page("files", where, tuple(args), cursor, limit, order)

    def get_filename(self, file_id: str) -> str | None:
        row = self._db.execute("SELECT filename FROM files WHERE id = ?", (file_id,)).fetchone()
        return None if row is None else str(row[0])

    def file_usage(self, owner: str) -> tuple[int, int]:
        """How many files the owner keeps, and their bytes."""
        row = self._db.execute(
            "SELECT COUNT(*), COALESCE(SUM(bytes), 0) FROM files WHERE owner = ?", (owner,)
        ).fetchone()
        return int(row[0]), int(row[1])

    def stores_of(self, file_id: str) -> list[str]:
        """The vector stores a file is in."""
        rows = self._all("SELECT store_id FROM store_files WHERE file_id = ?", file_id)
        return [r["store_id"] for r in rows]

    def delete_file(self, owner: str, file_id: str) -> None:
        """Delete a file and its rows in vector stores."""
        self._db.execute(
            "DELETE FROM store_files WHERE file_id = ? AND owner = ?", (file_id, owner)
        )
        self._db.execute("DELETE FROM files WHERE id = ? AND owner = ?", (file_id, owner))

    # ---- vector stores -----------------------------------------------------------

    def add_store(self, row: Row) -> None:
        self._insert("vector_stores", row)

    def get_store(self, owner: str, store_id: str) -> Row | None:
        return self._one("SELECT * FROM vector_stores WHERE id = ? AND owner = ?", store_id, owner)

    def list_stores(
        self, owner: str, cursor: tuple[str, str] | None, limit: int, order: str
    ) -> tuple[list[Row], bool]:
        found = None if cursor is None else (cursor[0], "id = ?", (cursor[1],))
        return self._page("vector_stores", "owner = ?", (owner,), found, limit, order)

    def count_stores(self, owner: str) -> int:
        row = self._db.execute("SELECT COUNT(*) FROM vector_stores WHERE owner = ?", (owner,))
        return int(row.fetchone()[0])

    def update_store(self, owner: str, store_id: str, changes: Row) -> None:
        encoded = _encode(changes)
        sets = ", ".join(f"{k} = ?" for k in encoded)
        self._db.execute(
            f"UPDATE vector_stores SET {sets} WHERE id = ? AND owner = ?",
            [*encoded.values(), store_id, owner],
        )

    def delete_store(self, owner: str, store_id: str) -> None:
        self._db.execute(
            "DELETE FROM store_files WHERE store_id = ? AND owner = ?", (store_id, owner)
        )
        self._db.execute("DELETE FROM batches WHERE store_id = ? AND owner = ?", (store_id, owner))
        self._db.execute("DELETE FROM vector_stores WHERE id = ? AND owner = ?", (store_id, owner))

    def counts(self, store_id: str, batch_id: str | None = None) -> tuple[dict[str, int], int]:
        """``file_counts`` of a store (or of one of its batches), and its usage in bytes."""
        where, args = "store_id = ?", [store_id]
        if batch_id is not None:
            where, args = where + " AND batch_id = ?", [store_id, batch_id]
        counts = dict.fromkeys(STATUSES, 0)
        usage = 0
        for status, count, used in self._db.execute(
            f"SELECT status, COUNT(*), COALESCE(SUM(usage_bytes), 0) FROM store_files "
            f"WHERE {where} GROUP BY status",
            args,
        ):
            counts[status] = int(count)
            usage += int(used)
        counts["total"] = sum(counts[s] for s in STATUSES)
        return counts, usage

    # ---- a store's files -----------------------------------------------------------

    def put_store_file(self, row: Row) -> None:
        """Add (or re-add) a file to a store."""
        self._insert("store_files", row, replace=True)

    def get_store_file(self, owner: str, store_id: str, file_id: str) -> Row | None:
        return self._one(
            "SELECT * FROM store_files WHERE store_id = ? AND file_id = ? AND owner = ?",
            store_id,
            file_id,
            owner,
        )

    def list_store_files(
        self,
        store_id: str,
        status: str | None,
        batch_id: str | None,
        cursor: tuple[str, str] | None,
        limit: int,
        order: str,
    ) -> tuple[list[Row], bool]:
        where, args = "store_id = ?", [store_id]
        if status is not None:
            where, args = where + " AND status = ?", [*args, status]
        if batch_id is not None:
            where, args = where + " AND batch_id = ?", [*args, batch_id]
        found = None
        if cursor is not None:
            found = (cursor[0], "store_id = ? AND file_id = ?", (store_id, cursor[1]))
        return self._page("store_files", where, tuple(args), found, limit, order)

    def update_store_file(self, store_id: str, file_id: str, changes: Row) -> bool:
        encoded = _encode(changes)
        sets = ", ".join(f"{k} = ?" for k in encoded)
        done = self._db.execute(
            f"UPDATE store_files SET {sets} WHERE store_id = ? AND file_id = ?",
            [*encoded.values(), store_id, file_id],
        )
        return done.rowcount > 0

    def delete_store_file(self, store_id: str, file_id: str) -> None:
        self._db.execute(
            "DELETE FROM store_files WHERE store_id = ? AND file_id = ?", (store_id, file_id)
        )

    def searchable_files(self, store_ids: list[str]) -> list[Row]:
        """The completed files of some stores: ids, names and attributes."""
        marks = ", ".join("?" for _ in store_ids)
        return self._all(
            f"SELECT s.store_id, s.file_id, s.attributes, f.filename FROM store_files s "
            f"JOIN files f ON f.id = s.file_id WHERE s.status = 'completed' "
            f"AND s.store_id IN ({marks})",
            *store_ids,
        )

    def unfinished(self) -> list[Row]:
        """Files whose ingestion a stop interrupted (resumed at startup)."""
        return self._all("SELECT * FROM store_files WHERE status = 'in_progress'")

    # ---- batches -----------------------------------------------------------------

    def add_batch(self, row: Row) -> None:
        self._insert("batches", row)

    def get_batch(self, owner: str, store_id: str, batch_id: str) -> Row | None:
        return self._one(
            "SELECT * FROM batches WHERE id = ? AND store_id = ? AND owner = ?",
            batch_id,
            store_id,
            owner,
        )

    def cancel_batch(self, batch_id: str) -> None:
        """Mark a batch cancelled, and its files still in progress."""
        self._db.execute("UPDATE batches SET cancelled = 1 WHERE id = ?", (batch_id,))
        self._db.execute(
            "UPDATE store_files SET status = 'cancelled' "
            "WHERE batch_id = ? AND status = 'in_progress'",
            (batch_id,),
        )
