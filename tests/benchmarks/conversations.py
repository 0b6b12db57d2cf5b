"""The fleet benchmark's load: concurrent users, each holding multi-turn
conversations over a long shared system prompt and a growing history.

Each user has one keep-alive connection and talks in a closed loop: it sends
a turn (streamed, the answer exactly ``--max-tokens`` tokens long), appends
the answer and its next question to its history, and sends the next turn at
once, or after a pause of ``--think-seconds`` on average (uniform, half to
one and a half times that); after ``--turns`` turns it starts a new
conversation. A conversation
carries its id in OpenAI's ``user`` field (what ``strategy: session`` keys
on). The texts are words of a license file, chosen by a seed, so every
subject gets the same shape of load but conversations of its own (no
subject finds another's history in the engines' caches).

Run as its own process; prints ``{"result": {...}}``:
``python -m tests.benchmarks.conversations --url URL --model M --system-file F --tag T``
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import uvloop

from tests.benchmarks.driver import percentile
from tests.benchmarks.http_client import ClientConnection, connect, render_request

CORPUS = Path("/usr/share/common-licenses/GPL-3")
FALLBACK_TEXT = "the engine keeps each conversation prefix in its cache and answers"


def words() -> list[str]:
    try:
        text = CORPUS.read_text()
    except OSError:
        text = " ".join([FALLBACK_TEXT] * 200)
    return text.split()


@dataclass(slots=True)
class Plan:
    url: str
    model: str
    system: str
    tag: str
    users: int
    turns: int
    seconds: float
    warmup_seconds: float
    max_tokens: int
    question_words: int
    think_seconds: float = 0.0


@dataclass(slots=True)
class Tally:
    ttfts: list[float] = field(default_factory=list)
    completion_tokens: int = 0
    requests: int = 0
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    prompt_tokens: list[int] = field(default_factory=list)


def answer_of(body: bytes) -> tuple[str, int, int]:
    """The streamed answer's text, completion and prompt tokens (from the usage chunk)."""
    text: list[str] = []
    completion = prompt = 0
    for line in body.split(b"\n"):
        if not line.startswith(b"data: {"):
            continue
        chunk = orjson.loads(line[6:])
        for choice in chunk.get("choices") or ():
            text.append((choice.get("delta") or {}).get("content") or "")
        usage = chunk.get("usage")
        if usage:
            completion, prompt = usage["completion_tokens"], usage["prompt_tokens"]
    return "".join(text), completion, prompt


class User:
    """One user: conversations one after another, turns one after another."""

    def __init__(self, plan: Plan, number: int, vocabulary: list[str], tally: Tally) -> None:
        self.plan = plan
        self.number = number
        self.vocabulary = vocabulary
        self.tally = tally
        self.rng = random.Random(f"{plan.tag}/{number}")
        self.pauses = random.Random(f"{plan.tag}/{number}/think")  # questions stay as without
        url = urlsplit(plan.url)
        assert url.hostname is not None and url.port is not None
        self.host, self.port, self.path = url.hostname, url.port, url.path

    def question(self) -> str:
        start = self.rng.randrange(len(self.vocabulary) - self.plan.question_words)
        return " ".join(self.vocabulary[start : start + self.plan.question_words]) + "?"

    async def run(self, measure_from: float, deadline: float) -> None:
        conn: ClientConnection = await connect(self.host, self.port, keep_body=True)
        conversation = 0
        while time.perf_counter() < deadline:
            conversation += 1
            name = f"{self.plan.tag}-{self.number}-{conversation}"
            conn = await self.converse(conn, name, measure_from, deadline)
        if conn.transport is not None:
            conn.transport.close()

    async def converse(
        self, conn: ClientConnection, conversation: str, measure_from: float, deadline: float
    ) -> ClientConnection:
        messages: list[dict[str, str]] = [{"role": "system", "content": self.plan.system}]
        for _ in range(self.plan.turns):
            if time.perf_counter() >= deadline:
                break
            if conn.closed:  # the server closed the idle connection: not an error
                conn = await connect(self.host, self.port, keep_body=True)
            messages.append({"role": "user", "content": self.question()})
            body = {
                "model": self.plan.model,
                "messages": messages,
                "max_tokens": self.plan.max_tokens,
                "ignore_eos": True,
                "stream": True,
                "stream_options": {"include_usage": True},
                "user": conversation,
            }
            request = render_request(
                "POST",
                f"{self.host}:{self.port}",
                self.path,
                orjson.dumps(body),
                {"Content-Type": "application/json"},
            )
            try:
                reply = await conn.request(request)
            except ConnectionError as exc:
                self.error(str(exc))
                return await connect(self.host, self.port, keep_body=True)
            if reply.status != 200 or reply.error_event:
                self.error(f"HTTP {reply.status}: {reply.body[:200]!r}")
                return conn
            text, completion, prompt = answer_of(reply.body)
            if measure_from <= reply.finished <= deadline:
                self.tally.requests += 1
                self.tally.ttfts.append(reply.first_byte - reply.started)
                self.tally.completion_tokens += completion
                self.tally.prompt_tokens.append(prompt)
            messages.append({"role": "assistant", "content": text})
            if self.plan.think_seconds:
                await asyncio.sleep(self.plan.think_seconds * self.pauses.uniform(0.5, 1.5))
        return conn

    def error(self, what: str) -> None:
        self.tally.errors += 1
        if len(self.tally.error_samples) < 5:
            self.tally.error_samples.append(what)


async def run(plan: Plan) -> dict[str, Any]:
    tally = Tally()
    vocabulary = words()
    started = time.perf_counter()
    measure_from = started + plan.warmup_seconds
    deadline = measure_from + plan.seconds
    users = [User(plan, number, vocabulary, tally) for number in range(plan.users)]
    await asyncio.gather(*(user.run(measure_from, deadline) for user in users))
    ms = 1000.0
    return {
        "requests": tally.requests,
        "errors": tally.errors,
        "error_samples": tally.error_samples,
        "seconds": plan.seconds,
        "ttft_ms": {
            "p50": round(percentile(tally.ttfts, 0.50) * ms, 1),
            "p90": round(percentile(tally.ttfts, 0.90) * ms, 1),
            "p99": round(percentile(tally.ttfts, 0.99) * ms, 1),
        },
        "completion_tokens": tally.completion_tokens,
        "tokens_per_second": round(tally.completion_tokens / plan.seconds, 1),
        "prompt_tokens_p50": int(percentile([float(p) for p in tally.prompt_tokens], 0.5)),
        "ttfts_ms": [round(t * ms, 2) for t in tally.ttfts],
    }


def parse_plan(argv: list[str] | None = None) -> Plan:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="the chat completions URL")
    parser.add_argument("--model", required=True)
    parser.add_argument("--system-file", required=True, type=Path)
    parser.add_argument("--tag", required=True, help="seeds the conversations (one per subject)")
    parser.add_argument("--users", type=int, default=16)
    parser.add_argument("--turns", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--warmup-seconds", type=float, default=10.0)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--question-words", type=int, default=60)
    parser.add_argument(
        "--think-seconds",
        type=float,
        default=0.0,
        help="mean pause between an answer and the next turn (0: at once)",
    )
    args = parser.parse_args(argv)
    return Plan(
        url=args.url,
        model=args.model,
        system=args.system_file.read_text(),
        tag=args.tag,
        users=args.users,
        turns=args.turns,
        seconds=args.seconds,
        warmup_seconds=args.warmup_seconds,
        max_tokens=args.max_tokens,
        question_words=args.question_words,
        think_seconds=args.think_seconds,
    )


def main(argv: list[str] | None = None) -> None:
    plan = parse_plan(argv)
    result = uvloop.run(run(plan))
    sys.stdout.write(orjson.dumps({"result": result}).decode() + "\n")


if __name__ == "__main__":
    main()
