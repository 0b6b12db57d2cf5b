"""OpenAI's Files and Vector Stores APIs on the wire, as pydantic models named
as OpenAI names them (the sibling of ``gateway.api.protocol``).

They validate a request so bad input gets a 400 naming the field; the
services then work on the client's own JSON object (unknown fields kept,
values as sent). Chunking strategies and filters are one model each, checked
by their ``type``, so an error's ``param`` is the JSON path the client wrote.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field, model_validator

from gateway.api.protocol import Metadata, Part, Request

COMPARISONS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "nin")
AttributeValue = str | float | bool


def _check_attributes(value: dict[str, AttributeValue]) -> dict[str, AttributeValue]:
    """OpenAI's limits: 16 pairs, keys up to 64 characters, strings up to 512."""
    if len(value) > 16:
        raise ValueError("at most 16 key-value pairs are allowed")
    for key, item in value.items():
        if len(key) > 64 or (isinstance(item, str) and len(item) > 512):
            raise ValueError("keys are at most 64 characters and string values at most 512")
    return value


Attributes = Annotated[dict[str, AttributeValue], AfterValidator(_check_attributes)]


class StaticChunking(Part):
    max_chunk_size_tokens: int = Field(ge=100, le=4096)
    chunk_overlap_tokens: int = Field(ge=0)

    @model_validator(mode="after")
    def _overlap(self) -> StaticChunking:
        if self.chunk_overlap_tokens > self.max_chunk_size_tokens // 2:
            raise ValueError("chunk_overlap_tokens must be at most half of max_chunk_size_tokens")
        return self


class ChunkingStrategy(Part):
    type: Literal["auto", "static"]
    static: StaticChunking | None = None

    @model_validator(mode="after")
    def _static(self) -> ChunkingStrategy:
        if self.type == "static" and self.static is None:
            raise ValueError("a static chunking_strategy needs 'static'")
        return self


class Filter(Part):
    """A comparison (``key``, ``type``, ``value``) or a compound (``and``/``or``
    of ``filters``) filter on file attributes."""

    type: Literal["eq", "ne", "gt", "gte", "lt", "lte", "in", "nin", "and", "or"]
    key: str | None = None
    value: AttributeValue | list[str | float] | None = None
    filters: list[Filter] | None = None

    @model_validator(mode="after")
    def _shape(self) -> Filter:
        if self.type in ("and", "or"):
            if not self.filters:
                raise ValueError(f"an '{self.type}' filter needs a non-empty 'filters' list")
        elif self.key is None or self.value is None:
            raise ValueError(f"a '{self.type}' filter needs 'key' and 'value'")
        elif (self.type in ("in", "nin")) != isinstance(self.value, list):
            raise ValueError("'in' and 'nin' take a list as 'value'; the others a single value")
        return self


class ExpiresAfter(Part):
    anchor: Literal["last_active_at"]
    days: int = Field(ge=1, le=365)


class VectorStoreCreateRequest(Request):
    name: str | None = None
    description: str | None = None
    metadata: Metadata | None = None
    expires_after: ExpiresAfter | None = None
    chunking_strategy: ChunkingStrategy | None = None
    file_ids: list[str] | None = Field(None, max_length=500)


class VectorStoreUpdateRequest(Request):
    name: str | None = None
    metadata: Metadata | None = None
    expires_after: ExpiresAfter | None = None


class VectorStoreFileCreateRequest(Request):
    file_id: str
    attributes: Attributes | None = None
    chunking_strategy: ChunkingStrategy | None = None


class VectorStoreFileUpdateRequest(Request):
    attributes: Attributes | None


class BatchFile(Part):
    file_id: str
    attributes: Attributes | None = None
    chunking_strategy: ChunkingStrategy | None = None


class FileBatchCreateRequest(Request):
    file_ids: list[str] | None = Field(None, max_length=2000)
    files: list[BatchFile] | None = Field(None, max_length=2000)
    attributes: Attributes | None = None
    chunking_strategy: ChunkingStrategy | None = None


class RankingOptions(Part):
    ranker: Literal["none", "auto", "default-2024-11-15"] | None = None
    score_threshold: float | None = Field(None, ge=0, le=1)


class VectorStoreSearchRequest(Request):
    query: str | list[str]
    max_num_results: int = Field(10, ge=1, le=50)
    filters: Filter | None = None
    ranking_options: RankingOptions | None = None
    rewrite_query: bool | None = None


class FileListQuery(BaseModel):
    after: str | None = None
    limit: int = Field(10_000, ge=1, le=10_000)
    order: Literal["asc", "desc"] = "desc"
    purpose: str | None = None


class StoreListQuery(BaseModel):
    """``after``/``before``, ``limit`` and ``order`` (and a store's files: ``filter``)."""

    after: str | None = None
    before: str | None = None
    limit: int = Field(20, ge=1, le=100)
    order: Literal["asc", "desc"] = "desc"
    filter: Literal["in_progress", "completed", "failed", "cancelled"] | None = None

    @property
    def cursor(self) -> tuple[str, str] | None:
        if self.after is not None:
            return ("after", self.after)
        return None if self.before is None else ("before", self.before)
