"""``strategy: prefix`` as pure logic: prompts hashed in chained blocks, the
bounded index of which target was sent which block, and the balancer's
choice between the longest match and the least loaded target."""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

from gateway.config.fleet import PrefixConfig
from gateway.config.schema import BreakerConfig
from gateway.routing.balancing import Balancing, PrefixAffinity
from gateway.routing.call import Call
from gateway.routing.health import TargetHealth
from gateway.routing.load import BackendLoad
from gateway.routing.prefix import PrefixIndex, TargetSlots, prompt_blocks
from gateway.routing.target import Target

SYSTEM = {"role": "system", "content": "You are a helpful assistant. " * 40}


class Switch:
    """A target's ``available``: whether its engine is up."""

    def __init__(self) -> None:
        self.up = True

    def __call__(self) -> bool:
        return self.up


def replicas(*names: str) -> tuple[list[Target], dict[str, Switch]]:
    adapter: Any = object()
    switches = {name: Switch() for name in names}
    targets = [
        Target(
            name,
            adapter,
            "m",
            TargetHealth(name, BreakerConfig()),
            available=switches[name],
            load=BackendLoad(),
        )
        for name in names
    ]
    return targets, switches


def balancer(targets: list[Target], **prefix: Any) -> PrefixAffinity:
    return PrefixAffinity(targets, Balancing(random.Random(0), PrefixConfig(**prefix)))


class Conversation:
    """One user's chat: a shared system prompt, then turns that grow it."""

    def __init__(self, user: str) -> None:
        self.messages: list[dict[str, str]] = [SYSTEM]
        self.user = user
        self.turn = 0

    def next_call(self) -> Call:
        self.turn += 1
        text = f"{self.user} asks question number {self.turn} about the weather, at length. "
        self.messages.append({"role": "user", "content": text * 3})
        return Call("chat", {"messages": list(self.messages)})

    def answered(self, text: str) -> None:
        self.messages.append({"role": "assistant", "content": text})


def route(balancer: PrefixAffinity, usable: list[Target], call: Call) -> Target:
    """What the router does: the first of the order gets the attempt."""
    chosen = balancer.order(usable, call)[0]
    balancer.sent(chosen, call)
    return chosen


def test_a_next_turn_shares_every_block_of_the_previous_turn() -> None:
    talk = Conversation("ann")
    first = talk.next_call()
    talk.answered("It is sunny. " * 10)
    second = talk.next_call()
    one, two = prompt_blocks(first, 64), prompt_blocks(second, 64)
    assert len(two) > len(one) > 10
    # Blocks end with each message, so all of turn one starts turn two.
    assert two[: len(one)] == one
    changed = Conversation("ann")
    changed.messages[0] = {"role": "system", "content": "You are a helpful assistant! " * 40}
    assert prompt_blocks(changed.next_call(), 64)[0] != one[0]
    # Computed once per request, however often it is routed.
    assert prompt_blocks(first, 64) is one


def test_completions_and_chat_prompts_are_both_hashed() -> None:
    text = Call("completions", {"prompt": "Once upon a time " * 20})
    tokens = Call("completions", {"prompt": [1, 2, 3] * 50})
    assert len(prompt_blocks(text, 64)) == 6
    assert prompt_blocks(tokens, 64)
    assert prompt_blocks(Call("chat", {}), 64) == []


def test_a_conversation_stays_on_one_replica_while_the_replicas_are_balanced() -> None:
    targets, _ = replicas("engine/r#0", "engine/r#1")
    prefix = balancer(targets, load_margin=2)
    talks = [Conversation(f"user{i}") for i in range(8)]
    homes: dict[str, set[str]] = {t.user: set() for t in talks}
    for _ in range(6):
        # Every user's turn is in flight at once, as with concurrent users.
        chosen = []
        for talk in talks:
            target = route(prefix, targets, talk.next_call())
            target.health.in_flight += 1
            homes[talk.user].add(target.name)
            chosen.append(target)
        for talk, target in zip(talks, chosen, strict=True):
            target.health.in_flight -= 1
            talk.answered(f"answer to {talk.user} " * 5)
    assert all(len(names) == 1 for names in homes.values()), homes
    # The first replica took new conversations until it was `load_margin` busier.
    spread = [name for names in homes.values() for name in names]
    assert {spread.count("engine/r#0"), spread.count("engine/r#1")} <= {3, 4, 5}


def test_an_overloaded_replica_loses_the_next_turn_to_the_least_loaded() -> None:
    targets, _ = replicas("engine/r#0", "engine/r#1")
    prefix = balancer(targets, load_margin=4)
    talk = Conversation("bob")
    home = route(prefix, targets, talk.next_call())
    other = next(t for t in targets if t is not home)
    talk.answered("fine")
    # Four more requests than the other: within the margin, the turn stays.
    home.health.in_flight = 4
    assert route(prefix, targets, talk.next_call()) is home
    talk.answered("fine")
    # The engine itself reports ten running (requests from elsewhere): past the margin.
    home.health.in_flight = 0
    assert home.load is not None
    home.load.report(10, 0, kv_cache_usage=0.3, now=time.monotonic(), good_for=5)
    assert route(prefix, targets, talk.next_call()) is other
    talk.answered("fine")
    # Once there, the conversation's longest prefix is on the other: it stays.
    home.load.report(0, 0, kv_cache_usage=0.3, now=time.monotonic(), good_for=5)
    assert route(prefix, targets, talk.next_call()) is other


def test_a_replica_that_leaves_is_forgotten() -> None:
    targets, switches = replicas("engine/r#0", "engine/r#1")
    prefix = balancer(targets)
    talk = Conversation("cy")
    home = route(prefix, targets, talk.next_call())
    other = next(t for t in targets if t is not home)
    talk.answered("ok")
    switches[home.name].up = False  # its engine stopped: its KV cache is gone
    usable = [other]
    assert route(prefix, usable, talk.next_call()) is other
    talk.answered("ok")
    switches[home.name].up = True  # back, empty
    # Give the returning replica less load, so only a stale memory would pick it.
    other.health.in_flight = 1
    assert route(prefix, targets, talk.next_call()) is other


def test_without_a_match_the_least_loaded_replica_goes_first() -> None:
    targets, _ = replicas("engine/r#0", "engine/r#1", "engine/r#2")
    prefix = balancer(targets)
    targets[0].health.in_flight = 3
    targets[1].health.in_flight = 1
    targets[2].health.in_flight = 2
    order = prefix.order(targets, Conversation("dee").next_call())
    assert [t.name for t in order] == ["engine/r#1", "engine/r#2", "engine/r#0"]


def test_the_index_evicts_the_least_recently_sent_blocks() -> None:
    index = PrefixIndex(capacity=4)
    index.record([1, 2], 0b01)
    index.record([3, 4], 0b10)
    index.record([1, 2], 0b10)  # touched again: now the most recent
    index.record([5], 0b01)
    assert len(index) == 4
    # Recorded tail first: [3, 4]'s tail went first, its head still matches.
    assert index.match([3, 4], 0b11) == (1, 0b10)
    assert index.match([1, 2], 0b11) == (2, 0b11)
    assert index.match([1, 2], 0b01) == (2, 0b01)


def test_target_bits_are_reused_only_after_a_sweep() -> None:
    index = PrefixIndex(capacity=1000)
    slots = TargetSlots(index)
    first = slots.bit("a")
    index.record([10, 11], first)
    slots.leave("a")
    seen = {first}
    for turn in range(TargetSlots.SWEEP_AT - 1):
        bit = slots.bit(f"b{turn}")
        assert bit not in seen  # no stale block can claim a new target
        seen.add(bit)
    reused = slots.bit("c")  # the sweep cleared a's blocks, then its bit was free
    assert reused == first
    assert index.match([10, 11], reused) == (0, 0)


def test_memory_stays_bounded_under_a_million_distinct_prompts() -> None:
    targets, _ = replicas("engine/r#0", "engine/r#1")
    cap = 20_000
    prefix = balancer(targets, max_blocks=cap, block_bytes=64)
    sizes = []
    for number in range(1_000_000):
        call = Call("completions", {"prompt": f"distinct prompt number {number:07d}, " * 4})
        route(prefix, targets, call)
        if number % 100_000 == 99_999:
            sizes.append((len(prefix._index), rss_bytes()))
    assert [blocks for blocks, _ in sizes] == [cap] * 10
    # Nine times more prompts after the index filled, and no more memory held.
    assert sizes[-1][1] - sizes[0][1] < 4 * 1024 * 1024, sizes


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")
