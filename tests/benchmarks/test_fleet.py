"""The fleet benchmark's arithmetic: counters read from vLLM's metrics text,
rounds merged, and the mean TTFT split by the engines' histograms."""

from __future__ import annotations

from typing import Any

import pytest

from tests.benchmarks.fleet import _COUNTER, SCRAPED, main, merged, phases

METRICS = b"""# HELP vllm:time_to_first_token_seconds Histogram of time to first token.
vllm:time_to_first_token_seconds_bucket{engine="0",le="0.1"} 3.0
vllm:time_to_first_token_seconds_sum{engine="0",model_name="m"} 1.5
vllm:time_to_first_token_seconds_count{engine="0",model_name="m"} 6.0
vllm:prefix_cache_hits_total{engine="0"} 40.0
"""


def test_the_metrics_text_yields_histogram_sums_and_counts() -> None:
    found = {m.group(1): float(m.group(2)) for m in _COUNTER.finditer(METRICS)}
    assert found == {
        b"vllm:time_to_first_token_seconds_sum": 1.5,
        b"vllm:time_to_first_token_seconds_count": 6.0,
        b"vllm:prefix_cache_hits_total": 40.0,
    }
    assert set(found) <= set(SCRAPED)


def _round(ttfts: list[float], replicas: list[dict[str, float]]) -> dict[str, Any]:
    counters = []
    for replica in replicas:
        counts = dict.fromkeys((key.decode() for key in SCRAPED), 0.0)
        counts.update(replica)
        counters.append(counts)
    return {
        "requests": len(ttfts),
        "errors": 0,
        "error_samples": [],
        "seconds": 10.0,
        "completion_tokens": 100,
        "ttfts_ms": ttfts,
        "counters": counters,
    }


def test_rounds_merge_into_mean_phases_over_both_replicas() -> None:
    engine = "vllm:time_to_first_token_seconds"
    queue = "vllm:request_queue_time_seconds"
    rounds = [
        _round(
            [100.0, 300.0],
            [
                {f"{engine}_sum": 0.3, f"{engine}_count": 2, f"{queue}_sum": 0.02},
                {f"{engine}_sum": 0.1, f"{engine}_count": 1, f"{queue}_count": 3},
            ],
        ),
        _round([200.0], [{f"{engine}_sum": 0.1, f"{engine}_count": 1}, {}]),
    ]
    run = merged(rounds)
    assert run["client_ttft_mean_ms"] == 200.0
    # (0.3 + 0.1 + 0.1) s over 4 requests; the queue's 0.02 s over 3; no prefill seen.
    assert run["engine_means_ms"] == {"engine_ttft": 125.0, "queue": 6.7, "prefill": None}
    table = phases({"prefix": run})
    assert "| prefix | 200 | 125 | 7 | — | 75 |" in table


def test_an_unknown_strategy_is_refused_before_anything_starts() -> None:
    with pytest.raises(SystemExit, match="unknown strategies: \\['fastest'\\]"):
        main(["--strategies", "prefix,fastest"])
