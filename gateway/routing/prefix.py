"""Prompt prefixes as chains of block hashes, and which targets were recently
sent each block: what ``strategy: prefix`` routes by.

A prompt is rendered to bytes in parts (a chat request's ``tools``, then
each of its ``messages``, as JSON; a completion's ``prompt`` is one part),
and each part is cut into blocks of ``block_bytes``, its last block ending
where the part ends. Each block's hash covers the block and the hash before
it, as vLLM hashes its KV cache blocks, so equal hashes mean an equal prefix
up to that block. A conversation's next turn is the previous turn's
messages and more, so it shares every block of the previous turn's prompt:
the blocks follow the messages, so no block straddles the point where the
two turns part.

``PrefixIndex`` maps a block hash to the targets sent it (a bit mask), at
most ``capacity`` blocks, least recently sent evicted first. A target gets a
bit for as long as it stays (``TargetSlots``): one that leaves (its engine
stopped: its KV cache is gone) loses its bit at once, and the masks shed it
lazily, so forgetting costs nothing at the time.
"""

from __future__ import annotations

from collections import OrderedDict

import orjson

from adapters.base import Body
from gateway.routing.call import Call

# Blocks hashed per prompt at most: past this, prefixes are long enough to tell apart.
MAX_PROMPT_BLOCKS = 1024


def prompt_blocks(call: Call, block_bytes: int) -> list[int]:
    """The chained block hashes of the request's prompt (computed once per request)."""
    cached = call.prefix_blocks
    if cached is not None and cached[0] == block_bytes:
        return cached[1]
    hashes: list[int] = []
    chained = block_bytes
    for part in rendered_parts(call.body):
        for start in range(0, len(part), block_bytes):
            if len(hashes) == MAX_PROMPT_BLOCKS:
                break
            chained = hash((chained, part[start : start + block_bytes]))
            hashes.append(chained)
    call.prefix_blocks = (block_bytes, hashes)
    return hashes


def rendered_parts(body: Body) -> list[bytes]:
    """The prompt as bytes, in parts that later turns of a conversation repeat."""
    messages = body.get("messages")
    if isinstance(messages, list):
        tools = body.get("tools")
        parts = [orjson.dumps(tools)] if tools else []
        parts.extend(orjson.dumps(message) for message in messages)
        return parts
    prompt = body.get("prompt", body.get("input"))
    if isinstance(prompt, str):
        return [prompt.encode()]
    return [] if prompt is None else [orjson.dumps(prompt)]


class PrefixIndex:
    """Block hash -> bit mask of the targets recently sent it, least recently
    sent evicted past ``capacity`` blocks."""

    __slots__ = ("_blocks", "capacity")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._blocks: OrderedDict[int, int] = OrderedDict()

    def __len__(self) -> int:
        return len(self._blocks)

    def match(self, hashes: list[int], candidates: int) -> tuple[int, int]:
        """How many leading blocks some candidate was sent, and which candidates
        (a mask) were sent that many."""
        blocks = self._blocks
        depth, best = 0, 0
        for hashed in hashes:
            mask = blocks.get(hashed, 0) & candidates
            if not mask:
                break
            depth += 1
            best = mask
        return depth, best

    def record(self, hashes: list[int], bit: int) -> None:
        """``bit``'s target was sent these blocks. The chain is touched tail
        first, so a prefix's head is evicted after its tail, never before."""
        blocks = self._blocks
        for hashed in reversed(hashes):
            mask = blocks.get(hashed)
            if mask is None:
                blocks[hashed] = bit
            else:
                blocks[hashed] = mask | bit
                blocks.move_to_end(hashed)
        while len(blocks) > self.capacity:
            blocks.popitem(last=False)

    def drop(self, bits: int) -> None:
        """Clear ``bits`` from every block; blocks left with none go."""
        blocks = self._blocks
        for hashed, mask in list(blocks.items()):
            kept = mask & ~bits
            if kept:
                blocks[hashed] = kept
            else:
                del blocks[hashed]


class TargetSlots:
    """A bit per target for as long as it stays. A target that leaves loses
    its bit (its blocks stop matching at once); bits are reused only after a
    sweep has cleared them from every block, once ``SWEEP_AT`` bits are taken."""

    SWEEP_AT = 64

    def __init__(self, index: PrefixIndex) -> None:
        self._index = index
        self._bits: dict[str, int] = {}
        self._free: list[int] = []
        self._next = 0
        self._departed = 0  # bits of targets that left, still in some masks

    def bit(self, name: str) -> int:
        """The target's bit, given one if it has none."""
        bit = self._bits.get(name)
        if bit is None:
            bit = self._bits[name] = self._new_bit()
        return bit

    def bit_of(self, name: str) -> int:
        """The target's bit; 0 while it has none."""
        return self._bits.get(name, 0)

    def leave(self, name: str) -> None:
        bit = self._bits.pop(name, None)
        if bit is not None:
            self._departed |= bit

    def _new_bit(self) -> int:
        if not self._free and self._next >= self.SWEEP_AT and self._departed:
            self._index.drop(self._departed)
            departed = self._departed
            self._free = [1 << i for i in range(departed.bit_length()) if departed >> i & 1]
            self._departed = 0
        if self._free:
            return self._free.pop()
        self._next += 1
        return 1 << (self._next - 1)
