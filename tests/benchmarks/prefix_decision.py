"""What one ``strategy: prefix`` decision costs, with the index full.

``python -m tests.benchmarks.prefix_decision`` fills a model's prefix index
(4 replicas) with conversations over a shared ~6 KB system prompt until it
holds 100,000 remembered prefixes (block hashes; each names the prefix up to
its block), then times a decision for a new turn of a remembered
conversation: hashing the prompt, ordering the replicas (``order``) and
recording the choice (``sent``). Also at 1,000,000, to show the cost does
not grow with the index. Prints a markdown table (median of 7 runs, in µs).
"""

from __future__ import annotations

import random
import statistics
import time
from typing import Any

from gateway.config.fleet import PrefixConfig
from gateway.config.schema import BreakerConfig
from gateway.routing.balancing import Balancing, PrefixAffinity
from gateway.routing.call import Call
from gateway.routing.health import TargetHealth
from gateway.routing.load import BackendLoad
from gateway.routing.prefix import prompt_blocks, rendered_parts
from gateway.routing.target import Target

SYSTEM = {"role": "system", "content": "Answer as a careful, concise assistant. " * 150}
SIZES = (100_000, 1_000_000)
DECISIONS = 2_000


def replicas(count: int) -> list[Target]:
    adapter: Any = object()
    return [
        Target(
            f"engine/r#{i}",
            adapter,
            "m",
            TargetHealth(f"r{i}", BreakerConfig()),
            load=BackendLoad(),
        )
        for i in range(count)
    ]


def conversation(number: int, turns: int) -> list[dict[str, str]]:
    messages = [SYSTEM]
    for turn in range(turns):
        messages.append({"role": "user", "content": f"user {number} asks question {turn}. " * 4})
        messages.append({"role": "assistant", "content": f"answer {turn} for {number}. " * 4})
    return messages


def filled(blocks: int, rng: random.Random) -> tuple[PrefixAffinity, list[Target], int]:
    """A balancer whose index holds ``blocks`` prefixes; and how many conversations that took."""
    targets = replicas(4)
    balancer = PrefixAffinity(targets, Balancing(rng, PrefixConfig(max_blocks=blocks)))
    number = 0
    while len(balancer._index) < blocks:
        call = Call("chat", {"messages": conversation(number, 3)})
        balancer.sent(targets[number % 4], call)
        number += 1
    return balancer, targets, number


def time_decisions(balancer: PrefixAffinity, targets: list[Target], known: int, seed: int) -> float:
    """Seconds per decision for a new turn of a remembered conversation."""
    rng = random.Random(seed)
    calls = [
        Call("chat", {"messages": conversation(rng.randrange(known), 4)}) for _ in range(DECISIONS)
    ]
    started = time.perf_counter()
    for call in calls:
        chosen = balancer.order(targets, call)[0]
        balancer.sent(chosen, call)
    return (time.perf_counter() - started) / DECISIONS


def time_hashing(seed: int) -> float:
    rng = random.Random(seed)
    calls = [
        Call("chat", {"messages": conversation(rng.randrange(1000), 4)}) for _ in range(DECISIONS)
    ]
    started = time.perf_counter()
    for call in calls:
        prompt_blocks(call, 256)
    return (time.perf_counter() - started) / DECISIONS


def main() -> None:
    rows = []
    for size in SIZES:
        balancer, targets, known = filled(size, random.Random(size))
        decision = statistics.median(time_decisions(balancer, targets, known, s) for s in range(7))
        rows.append((size, known, decision))
    hashing = statistics.median(time_hashing(s) for s in range(7))
    body = {"messages": conversation(0, 4)}
    size = sum(len(part) for part in rendered_parts(body))
    blocks = len(prompt_blocks(Call("chat", body), 256))
    print(f"a decision's prompt: {size:,} bytes rendered, {blocks} blocks (256 bytes at most)")
    print("| remembered prefixes (blocks) | conversations | decision (µs) |")
    print("|---|---|---|")
    for size, known, decision in rows:
        print(f"| {size:,} | {known:,} | {decision * 1e6:.1f} |")
    print(f"of which hashing the prompt: {hashing * 1e6:.1f} µs")


if __name__ == "__main__":
    main()
