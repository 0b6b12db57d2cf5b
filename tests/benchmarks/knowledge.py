"""Knowledge bases at scale, on Milvus Lite: ingestion chunks/s, search latency
p50/p99 and recall@10 against exact search, at 100,000 chunks.

    python -m tests.benchmarks.knowledge                 # 100,000 chunks of 384 dimensions
    python -m tests.benchmarks.knowledge --chunks 20000  # quicker

It drives the gateway's own ``VectorIndex`` (gateway.knowledge.vectors: the
collection, HNSW index, store partition key and filters a gateway uses) on a
fresh Milvus Lite directory, and seals (flushes) after each batch of 1,000
as ingestion does after each file. Vectors are generated, of all-MiniLM-L6-v2's
dimension: a mixture of clusters (real embeddings of a corpus cluster by
topic; uniform noise would be an unrealistically hard and easy case at once),
split over ``--stores`` vector stores. Ingestion inserts batches of 1,000 as
ingestion does; each search asks for 10 results in one store (``file_search``
on one store) and, for a second figure, across every store. Exact search is
numpy's over the same vectors and the same filter, so recall@10 is the share
of the true 10 nearest that Milvus returned. Embedding time is not in these
figures (the model's speed is the engine's): see the README.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from gateway.config.knowledge import KnowledgeConfig
from gateway.knowledge.vectors import VectorIndex

DIMENSION = 384
BATCH = 1000
RESULTS = 10


def corpus(count: int, stores: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors around 200 topic centres, and the store of each."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((200, DIMENSION)).astype(np.float32)
    topic = rng.integers(0, len(centres), count)
    vectors = centres[topic] + 0.6 * rng.standard_normal((count, DIMENSION)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors, rng.integers(0, stores, count)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def measure(args: argparse.Namespace, where: Path) -> dict[str, Any]:
    index = VectorIndex(
        KnowledgeConfig(embedding_model="minilm", milvus_uri=str(where / "milvus.db"))
    )
    vectors, store_of = corpus(args.chunks, args.stores, args.seed)
    names = [f"vs_bench{n}" for n in range(args.stores)]
    await index.start()
    started = time.perf_counter()
    for start in range(0, args.chunks, BATCH):
        rows = [
            {
                "id": f"{names[store_of[i]]}/file-{i // 50}/{i}",
                "store_id": names[store_of[i]],
                "file_id": f"file-{i // 50}",
                "text": f"chunk {i}",
                "vector": vectors[i].tolist(),
            }
            for i in range(start, min(start + BATCH, args.chunks))
        ]
        await index.insert(rows, DIMENSION)
        await index.seal(DIMENSION)  # as ingestion does after each file
    ingest_seconds = time.perf_counter() - started
    rng = np.random.default_rng(args.seed + 1)
    queries = vectors[rng.integers(0, args.chunks, args.queries)]
    queries = queries + 0.3 * rng.standard_normal(queries.shape).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    figures: dict[str, Any] = {
        "chunks": args.chunks,
        "dimension": DIMENSION,
        "stores": args.stores,
        "ingest_seconds": round(ingest_seconds, 1),
        "ingest_chunks_per_second": round(args.chunks / ingest_seconds),
    }
    for label, scoped in (("one_store", True), ("all_stores", False)):
        latencies, recalls = [], []
        for n, query in enumerate(queries):
            store = n % args.stores
            allowed = [names[store]] if scoped else names
            began = time.perf_counter()
            hits = await index.search(query.tolist(), allowed, None, RESULTS)
            latencies.append((time.perf_counter() - began) * 1000)
            scores = vectors @ query
            if scoped:
                scores = np.where(store_of == store, scores, -np.inf)
            truth = {int(i) for i in np.argsort(-scores)[:RESULTS]}
            found = {int(hit.text.split()[1]) for hit in hits}
            recalls.append(len(truth & found) / RESULTS)
        figures[label] = {
            "search_p50_ms": round(statistics.median(latencies), 2),
            "search_p99_ms": round(percentile(latencies, 0.99), 2),
            "recall_at_10": round(statistics.fmean(recalls), 4),
        }
    await index.aclose()
    return figures


def report(figures: dict[str, Any]) -> str:
    lines = [
        f"Milvus Lite, {figures['chunks']:,} chunks of {figures['dimension']} dimensions "
        f"in {figures['stores']} stores",
        f"- ingestion: {figures['ingest_chunks_per_second']:,} chunks/s "
        f"({figures['ingest_seconds']} s)",
    ]
    for label, title in (("one_store", "one store"), ("all_stores", "every store")):
        got = figures[label]
        lines.append(
            f"- search in {title}: p50 {got['search_p50_ms']} ms, p99 {got['search_p99_ms']} ms, "
            f"recall@10 {got['recall_at_10']:.3f}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--stores", type=int, default=10)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=Path("bench-results"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="knowledge-bench-") as where:
        figures = asyncio.run(measure(args, Path(where)))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "knowledge.json").write_text(json.dumps(figures, indent=2))
    print(report(figures))


if __name__ == "__main__":
    main()
