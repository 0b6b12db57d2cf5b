"""OpenAI's Responses and Conversations APIs on the wire, as pydantic models
named as OpenAI names them (the sibling of ``gateway.api.protocol``).

Like the chat models these validate a request to reject bad input with an
error naming the field, and keep unknown fields: vendor extras (``top_k``,
``min_p``, ...) pass on to the backend. The gateway then works on the
client's own JSON object, never on a re-serialization of these models.
Item, tool and tool-choice unions are tagged by ``type``; a ``type`` the
gateway does not know lands in a catch-all member, so the service can answer
with a 400 naming it (or a registered tool kind can take it).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Discriminator, Field, Tag, ValidationError

from adapters.errors import InvalidRequestError
from gateway.api.knowledge_protocol import Filter, RankingOptions
from gateway.api.protocol import Metadata, Part, Request
from gateway.config.loader import format_loc

# ---- content parts -------------------------------------------------------------


class InputText(Part):
    type: Literal["input_text"]
    text: str


class InputImage(Part):
    type: Literal["input_image"]
    image_url: str | None = None
    file_id: str | None = None
    detail: Literal["auto", "low", "high", "original"] | None = None


class InputFile(Part):
    type: Literal["input_file"]
    file_data: str | None = None
    file_id: str | None = None
    file_url: str | None = None
    filename: str | None = None


class InputAudioData(Part):
    data: str
    format: str


class InputAudio(Part):
    type: Literal["input_audio"]
    input_audio: InputAudioData


class OutputText(Part):
    type: Literal["output_text"]
    text: str
    annotations: list[dict[str, Any]] | None = None


class Refusal(Part):
    type: Literal["refusal"]
    refusal: str


MessagePart = Annotated[
    InputText | InputImage | InputFile | InputAudio | OutputText | Refusal,
    Field(discriminator="type"),
]
OutputPart = Annotated[InputText | InputImage | InputFile, Field(discriminator="type")]


# ---- input items ----------------------------------------------------------------

ItemStatus = Literal["in_progress", "completed", "incomplete"]


class MessageItem(Part):
    type: Literal["message"] | None = None
    role: Literal["user", "assistant", "system", "developer"]
    content: str | list[MessagePart]
    id: str | None = None
    status: ItemStatus | None = None


class FunctionCallItem(Part):
    type: Literal["function_call"]
    call_id: str
    name: str
    arguments: str
    id: str | None = None
    status: ItemStatus | None = None


class FunctionCallOutputItem(Part):
    type: Literal["function_call_output"]
    call_id: str
    output: str | list[OutputPart]
    id: str | None = None
    status: ItemStatus | None = None


class TextPart(Part):
    type: Literal["summary_text", "reasoning_text"]
    text: str


class ReasoningItem(Part):
    type: Literal["reasoning"]
    id: str | None = None
    summary: list[TextPart] = Field(default_factory=list)
    content: list[TextPart] | None = None
    encrypted_content: str | None = None
    status: ItemStatus | None = None


class OtherItem(Part):
    """An item whose ``type`` this gateway has no model for (a tool kind may own it)."""

    type: str


KNOWN_ITEMS = frozenset({"message", "function_call", "function_call_output", "reasoning"})


def _item_tag(value: Any) -> str:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    if kind is None:
        return "message"  # OpenAI's "easy" input message has no type
    return kind if isinstance(kind, str) and kind in KNOWN_ITEMS else "other"


InputItem = Annotated[
    Annotated[MessageItem, Tag("message")]
    | Annotated[FunctionCallItem, Tag("function_call")]
    | Annotated[FunctionCallOutputItem, Tag("function_call_output")]
    | Annotated[ReasoningItem, Tag("reasoning")]
    | Annotated[OtherItem, Tag("other")],
    Discriminator(_item_tag),
]


# ---- tools, tool choice, text format, reasoning ---------------------------------


class FunctionTool(Part):
    type: Literal["function"]
    name: str = Field(min_length=1, max_length=64)
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class FileSearchTool(Part):
    type: Literal["file_search"]
    vector_store_ids: list[str] = Field(min_length=1, max_length=16)
    max_num_results: int | None = Field(None, ge=1, le=50)
    filters: Filter | None = None
    ranking_options: RankingOptions | None = None


class OtherTool(Part):
    type: str


def _tool_tag(value: Any) -> str:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return kind if kind in ("function", "file_search") else "other"


ToolDefinition = Annotated[
    Annotated[FunctionTool, Tag("function")]
    | Annotated[FileSearchTool, Tag("file_search")]
    | Annotated[OtherTool, Tag("other")],
    Discriminator(_tool_tag),
]


class ToolChoiceFunction(Part):
    type: Literal["function"]
    name: str


class ToolChoiceAllowed(Part):
    type: Literal["allowed_tools"]
    mode: Literal["auto", "required"]
    tools: list[dict[str, Any]]


class OtherToolChoice(Part):
    type: str


def _choice_tag(value: Any) -> str:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return kind if kind in ("function", "allowed_tools") else "other"


ToolChoice = (
    Literal["none", "auto", "required"]
    | Annotated[
        Annotated[ToolChoiceFunction, Tag("function")]
        | Annotated[ToolChoiceAllowed, Tag("allowed_tools")]
        | Annotated[OtherToolChoice, Tag("other")],
        Discriminator(_choice_tag),
    ]
)


class FormatText(Part):
    type: Literal["text"]


class FormatJsonObject(Part):
    type: Literal["json_object"]


class FormatJsonSchema(Part):
    type: Literal["json_schema"]
    name: str = Field(min_length=1, max_length=64)
    schema_: dict[str, Any] = Field(alias="schema")
    description: str | None = None
    strict: bool | None = None


class TextConfig(Part):
    format: (
        Annotated[FormatText | FormatJsonObject | FormatJsonSchema, Field(discriminator="type")]
        | None
    ) = None
    verbosity: Literal["low", "medium", "high"] | None = None


class ReasoningConfig(Part):
    effort: Literal["none", "minimal", "low", "medium", "high", "xhigh"] | None = None
    summary: Literal["auto", "concise", "detailed"] | None = None
    generate_summary: Literal["auto", "concise", "detailed"] | None = None


class ConversationRef(Part):
    id: str


class StreamOptions(Part):
    include_obfuscation: bool | None = None


Includable = Literal[
    "file_search_call.results",
    "web_search_call.results",
    "web_search_call.action.sources",
    "message.input_image.image_url",
    "computer_call_output.output.image_url",
    "code_interpreter_call.outputs",
    "reasoning.encrypted_content",
    "message.output_text.logprobs",
]


# ---- requests ------------------------------------------------------------------


class ResponseCreateRequest(Request):
    """``POST /v1/responses``. Fields of OpenAI's API the gateway cannot honour
    are typed loosely here and refused by the service with a 400 naming them."""

    model: str
    input: str | list[InputItem] | None = None
    instructions: str | None = None
    previous_response_id: str | None = None
    conversation: str | ConversationRef | None = None
    store: bool | None = None
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    tools: list[ToolDefinition] | None = None
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    text: TextConfig | None = None
    max_output_tokens: int | None = Field(None, ge=1)
    max_tool_calls: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    top_logprobs: int | None = Field(None, ge=0, le=20)
    reasoning: ReasoningConfig | None = None
    truncation: Literal["auto", "disabled"] | None = None
    metadata: Metadata | None = None
    user: str | None = None
    safety_identifier: str | None = None
    prompt_cache_key: str | None = None
    prompt_cache_retention: Literal["in_memory", "24h"] | None = None
    service_tier: str | None = None
    include: list[Includable] | None = None
    background: bool | None = None


class ResponseCreateEvent(ResponseCreateRequest):
    """WebSocket mode's ``response.create``: the create body plus the envelope."""

    type: Literal["response.create"]
    generate: bool | None = None
    stream_id: str | None = None


class ConversationCreateRequest(Request):
    items: list[InputItem] | None = Field(None, max_length=20)
    metadata: Metadata | None = None


class ConversationUpdateRequest(Request):
    metadata: Metadata


class ConversationItemsRequest(Request):
    items: list[InputItem] = Field(min_length=1, max_length=20)


class ListQuery(BaseModel):
    """``after``, ``limit`` and ``order`` of the cursor-paginated listings."""

    after: str | None = None
    limit: int = Field(20, ge=1, le=100)
    order: Literal["asc", "desc"] = "desc"


def _field_names(*models: type[BaseModel]) -> frozenset[str]:
    """The JSON names of every field of this module's models."""
    names: set[str] = set()
    pending = list(models)
    while pending:
        model = pending.pop()
        pending.extend(model.__subclasses__())
        if model.__module__ in (__name__, Filter.__module__):  # file_search's filters
            names.update(info.alias or name for name, info in model.model_fields.items())
    return frozenset(names)


# What a validation error's ``param`` may show: pydantic's loc also holds union
# members ("list[...]", "str") and the tags of tagged unions ("message", right
# after a list index or a union field), which are no part of the JSON.
WIRE_FIELDS = _field_names(Part, Request, ListQuery)
_TAGS = frozenset(
    {"message", "function", "file_search", "allowed_tools", "other", "text", "json_object"}
    | {"json_schema"}
    | KNOWN_ITEMS
    | {"input_text", "input_image", "input_file", "input_audio", "output_text", "refusal"}
    | {"summary_text", "reasoning_text"}
)


def _json_path(loc: tuple[str | int, ...]) -> list[str | int]:
    path: list[str | int] = []
    previous: str | int = ""
    for part in loc:
        tag = part in _TAGS and (
            isinstance(previous, int) or previous == "format" or "[" in str(previous)
        )
        if isinstance(part, int) or (part in WIRE_FIELDS and not tag):
            path.append(part)
        previous = part
    return path


def wire_validation_error(exc: ValidationError) -> InvalidRequestError:
    """The most specific problem of a Responses or Conversations body: the error
    deepest in the JSON (a union's other members fail shallower), its ``param``
    the JSON path without pydantic's member and tag names."""
    best: tuple[list[str | int], str, str] | None = None
    for error in exc.errors(include_url=False):
        loc = _json_path(error["loc"])
        if best is None or len(loc) > len(best[0]):
            best = (loc, error["type"], error["msg"])
    assert best is not None
    loc, kind, text = best
    param = format_loc(loc)
    if kind == "missing":
        message = f"Missing required parameter: '{param}'."
    else:
        message = f"Invalid value for '{param}': {text}."
    return InvalidRequestError(message, param=param, code="invalid_value")
