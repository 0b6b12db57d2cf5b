"""The ``file_search`` tool: retrieval from the caller's vector stores into
the model's context, as OpenAI's hosted tool answers.

Before the model runs, the turn's input text (its last user message) is
searched in each ``file_search`` tool's ``vector_store_ids`` (with its
``filters``, ``max_num_results`` and ``ranking_options.score_threshold``);
the chunks found become numbered sources in the leading system message, and
the model is asked to cite them as ``[n]``. The Response then carries a
``file_search_call`` item before the answer (its ``results`` when ``include``
asks for ``file_search_call.results``) and ``file_citation`` annotations on
the answer's text (``gateway.responses.citations``). No chat tool is offered
for it: the search is done, whatever the backend.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway.knowledge.search import Result, Searcher
from gateway.responses.citations import Citations, Source
from gateway.responses.ids import new_id

Body = dict[str, Any]
RESULTS_INCLUDE = "file_search_call.results"
DEFAULT_MAX_RESULTS = 10
PREAMBLE = (
    "Use the numbered sources below, retrieved from the user's files, when they help "
    "answer. Cite a source by its number in square brackets, e.g. [1], right after the "
    "statement it supports. If the sources do not contain the answer, say so."
)


class FileSearchTools:
    """``{"type": "file_search"}`` tools: nothing for the chat backend to call
    (the search runs before it); ``file_search_call`` items stay in the
    history but are not sent again (a later turn searches anew)."""

    tool_type = "file_search"
    item_types = frozenset({"file_search_call"})

    def chat_tools(self, tool: Body, param: str) -> list[Body]:
        return []

    def normalize(self, item: Body, param: str) -> Body:
        return {**item, "id": item.get("id") or new_id("fs"), "status": "completed"}

    def add_messages(self, item: Body, messages: list[Body]) -> None:
        return None


@dataclass(slots=True)
class SearchCall:
    """One turn's search: its output item and the sources the model was given."""

    item: Body
    results: list[Result]
    sources: list[Source] = field(default_factory=list)

    def citations(self) -> Citations | None:
        return Citations(self.sources) if self.sources else None


def query_text(items: list[Body]) -> str:
    """The text of the last user message of this turn's input."""
    for item in reversed(items):
        if item.get("role") != "user" or item.get("type") not in (None, "message"):
            continue
        content = item.get("content")
        if isinstance(content, str):
            return content
        return "\n".join(
            part.get("text", "")
            for part in content or ()
            if isinstance(part, dict) and part.get("type") == "input_text"
        )
    return ""


class FileSearch:
    def __init__(self, searcher: Searcher) -> None:
        self.searcher = searcher

    async def run(self, owner: str, body: Body, input_items: list[Body]) -> SearchCall | None:
        """Search for a turn whose tools include ``file_search`` (else None)."""
        tools = [
            (i, t) for i, t in enumerate(body.get("tools") or ()) if t["type"] == "file_search"
        ]
        if not tools:
            return None
        query = query_text(input_items)
        found: list[Result] = []
        wanted = 0
        for index, tool in tools:
            limit = tool.get("max_num_results") or DEFAULT_MAX_RESULTS
            wanted = max(wanted, limit)
            threshold = (tool.get("ranking_options") or {}).get("score_threshold")
            found += await self.searcher.search(
                owner,
                list(tool["vector_store_ids"]),
                [query],
                limit,
                tool.get("filters"),
                threshold,
                param=f"tools[{index}].vector_store_ids",
            )
        found = sorted(found, key=lambda r: r.score, reverse=True)[:wanted]
        include = RESULTS_INCLUDE in (body.get("include") or ())
        item = {
            "id": new_id("fs"),
            "type": "file_search_call",
            "status": "completed",
            "queries": [query] if query.strip() else [],
            "results": [_result(r) for r in found] if include else None,
        }
        sources = [Source(n, r.file_id, r.filename) for n, r in enumerate(found, 1)]
        return SearchCall(item, found, sources)


def _result(result: Result) -> Body:
    return {
        "file_id": result.file_id,
        "filename": result.filename,
        "score": result.score,
        "text": result.text,
        "attributes": result.attributes,
    }


def add_sources(messages: list[Body], search: SearchCall) -> None:
    """Put the sources in the leading system message (made when there is none:
    some chat templates take a system message only first)."""
    if not search.results:
        return
    listed = "\n\n".join(
        f"[{n}] {r.filename}\n{r.text.strip()}" for n, r in enumerate(search.results, 1)
    )
    text = f"{PREAMBLE}\n\n{listed}"
    first = messages[0] if messages else None
    if first is not None and first.get("role") == "system" and isinstance(first["content"], str):
        messages[0] = {**first, "content": f"{first['content']}\n\n{text}"}
    else:
        messages.insert(0, {"role": "system", "content": text})
