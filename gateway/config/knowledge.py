"""The ``knowledge:`` section of models.yaml: the Files and Vector Stores APIs
and the Responses API's ``file_search`` tool.

    knowledge:
      embedding_model: minilm          # a public model name from models: (an embedding model)
      milvus_uri: ./data/milvus.db     # a file: Milvus Lite; http://milvus:19530: a Milvus server
      files_dir: ./data/files
      max_file_bytes: 52428800

Uploaded files are kept under ``files_dir`` (with the catalog of files and
vector stores); chunk vectors go to Milvus: a local Milvus Lite directory when
``milvus_uri`` is a path, a Milvus server or cluster when it is an
``http(s)://`` URI. The loader checks that ``embedding_model`` is one of
``models:``. The keys below the four of the contract are this gateway's own.
"""

from __future__ import annotations

from pydantic import Field, SecretStr

from adapters.config import Strict


class KnowledgeConfig(Strict):
    embedding_model: str = Field(description="A public embedding model of models.yaml")
    milvus_uri: str = Field(
        "./data/milvus.db", description="A path: Milvus Lite; http(s)://host:19530: a server"
    )
    files_dir: str = Field("./data/files", description="Uploaded files and the catalog")
    max_file_bytes: int = Field(52_428_800, gt=0, description="A larger upload: 413")
    # Not in the contract: this gateway's own knobs.
    milvus_token: SecretStr | None = Field(
        None, description="A Milvus server's token (user:password or an API key)"
    )
    collection: str = Field(
        "vllm_gateway_chunks",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,200}$",
        description="Milvus collection name prefix (the vectors' dimension is appended)",
    )
    max_files_per_caller: int = Field(10_000, gt=0, description="Files one caller may keep")
    max_bytes_per_caller: int = Field(
        10 * 1024**3, gt=0, description="Bytes of files one caller may keep"
    )
    max_stores_per_caller: int = Field(1_000, gt=0, description="Vector stores one caller may keep")
    ingest_concurrency: int = Field(2, ge=1, le=64, description="Files ingested at once")
    embedding_batch: int = Field(32, ge=1, le=2048, description="Chunks per embeddings request")

    @property
    def is_lite(self) -> bool:
        """A local path (Milvus Lite), not a server URI."""
        return not self.milvus_uri.startswith(("http://", "https://", "tcp://", "unix:"))
