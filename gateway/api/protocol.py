"""OpenAI's wire format, as pydantic models named as OpenAI names them.

Requests keep unknown fields (``extra="allow"``): vendor extras such as
vLLM's ``top_k``, ``min_p`` or ``guided_json`` pass through to the backend
untouched. The gateway validates a request to reject bad input with an error
naming the field, then forwards the client's own JSON object (with the model
name swapped), so nothing is re-serialized from these models on the hot path.
Fields marked "not in OpenAI's spec" are additions.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


# Strict: the gateway forwards the client's JSON as sent, so what it accepts
# must be what the backend will accept (no "0.5" silently read as 0.5).
class Request(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)


class Part(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)


def _check_metadata(value: dict[str, str]) -> dict[str, str]:
    """OpenAI's limits: 16 pairs, keys up to 64 characters, values up to 512."""
    if len(value) > 16:
        raise ValueError("at most 16 key-value pairs are allowed")
    for key, item in value.items():
        if len(key) > 64 or len(item) > 512:
            raise ValueError("keys are at most 64 characters and values at most 512")
    return value


# ``metadata`` of Responses, Conversations and vector stores.
Metadata = Annotated[dict[str, str], AfterValidator(_check_metadata)]


# ---- chat messages -----------------------------------------------------------


class TextPart(Part):
    type: Literal["text"]
    text: str


class ImageURL(Part):
    url: str
    detail: Literal["auto", "low", "high"] | None = None


class ImagePart(Part):
    type: Literal["image_url"]
    image_url: ImageURL


class InputAudio(Part):
    data: str
    format: str


class AudioPart(Part):
    type: Literal["input_audio"]
    input_audio: InputAudio


class FilePart(Part):
    type: Literal["file"]
    file: dict[str, Any]


class RefusalPart(Part):
    type: Literal["refusal"]
    refusal: str


ContentPart = Annotated[
    TextPart | ImagePart | AudioPart | FilePart | RefusalPart, Field(discriminator="type")
]


class FunctionCall(Part):
    name: str
    arguments: str


class ToolCall(Part):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class ChatMessage(Part):
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None
    # Not in OpenAI's spec: DeepSeek's and vLLM's reasoning text on assistant turns.
    reasoning_content: str | None = None


# ---- tools and response formats ---------------------------------------------


class FunctionDefinition(Part):
    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class Tool(Part):
    type: Literal["function"]
    function: FunctionDefinition


class NamedToolChoiceFunction(Part):
    name: str


class NamedToolChoice(Part):
    type: Literal["function"]
    function: NamedToolChoiceFunction


class JSONSchema(Part):
    name: str
    description: str | None = None
    schema_: dict[str, Any] | None = Field(None, alias="schema")
    strict: bool | None = None


class ResponseFormat(Part):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JSONSchema | None = None


class StreamOptions(Part):
    include_usage: bool | None = None


# ---- requests ----------------------------------------------------------------


class SamplingParams(Request):
    """Fields shared by chat and text completions."""

    model: str
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    n: int | None = Field(None, ge=1)
    max_tokens: int | None = Field(None, ge=0)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    stop: str | list[str] | None = None
    seed: int | None = None
    logit_bias: dict[str, float] | None = None
    user: str | None = None


class ChatCompletionRequest(SamplingParams):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=0)
    logprobs: bool | None = None
    top_logprobs: int | None = Field(None, ge=0, le=20)
    tools: list[Tool] | None = None
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    metadata: dict[str, str] | None = None
    store: bool | None = None
    reasoning_effort: str | None = None
    modalities: list[str] | None = None
    service_tier: str | None = None


class CompletionRequest(SamplingParams):
    prompt: str | list[str] | list[int] | list[list[int]]
    echo: bool | None = None
    best_of: int | None = Field(None, ge=1)
    logprobs: int | None = Field(None, ge=0, le=5)
    suffix: str | None = None


class EmbeddingRequest(Request):
    model: str
    input: str | list[str] | list[int] | list[list[int]]
    encoding_format: Literal["float", "base64"] | None = None
    dimensions: int | None = Field(None, ge=1)
    user: str | None = None


# ---- responses the gateway builds itself ------------------------------------


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "vllm-gateway"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]
