# DeepSeek's control tokens really are spelled with FULLWIDTH VERTICAL LINE (U+FF5C).
# ruff: noqa: RUF001
"""Chat templates and special tokens of each model family, for the tiny checkpoints.

Each template renders the family's own prompt format closely enough that
vLLM's parsers for that family (tool calls, reasoning) find the markers they
look for. They are written for this project, in the families' documented
formats, and kept short: system prompt, user/assistant turns, tool
definitions, assistant tool calls and tool results.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# transformers and vLLM render chat templates with trim_blocks, which eats a
# newline right after a block tag: such newlines are written as {{ NL }}.
NL = "{{ '\\n' }}"

# An OpenAI tool call's arguments are a JSON string; some clients send an
# object. Either way the prompt holds JSON.
_ARGS = (
    "{% macro args_json(call) %}"
    "{% if call.function.arguments is string %}{{ call.function.arguments }}"
    "{% else %}{{ call.function.arguments | tojson }}{% endif %}"
    "{% endmacro %}"
)

_SPLIT_SYSTEM = (
    "{% if messages and messages[0].role == 'system' %}"
    "{% set system = messages[0].content %}{% set turns = messages[1:] %}"
    "{% else %}{% set system = '' %}{% set turns = messages %}{% endif %}"
)

LLAMA3_TEMPLATE = (
    _ARGS + _SPLIT_SYSTEM + "{{ bos_token }}<|start_header_id|>system<|end_header_id|>\n\n"
    "{% if tools %}Environment: ipython\n"
    "You may call these functions. To call one, answer with only a JSON object "
    '{"name": <function name>, "parameters": <arguments object>}.\n\n'
    "{% for tool in tools %}{{ tool | tojson }}" + NL + NL + "{% endfor %}{% endif %}"
    "{{ system }}<|eot_id|>"
    "{% for m in turns %}"
    "{% if m.role == 'assistant' and m.tool_calls %}"
    "<|start_header_id|>assistant<|end_header_id|>\n\n"
    "{% for call in m.tool_calls %}"
    '{"name": "{{ call.function.name }}", "parameters": {{ args_json(call) }}}'
    "{% endfor %}<|eot_id|>"
    "{% elif m.role == 'tool' %}"
    "<|start_header_id|>ipython<|end_header_id|>\n\n{{ m.content }}<|eot_id|>"
    "{% else %}"
    "<|start_header_id|>{{ m.role }}<|end_header_id|>\n\n{{ m.content | trim }}<|eot_id|>"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n"
    "{% endif %}"
)

QWEN2_TEMPLATE = (
    _ARGS + _SPLIT_SYSTEM + "{% if tools %}"
    "<|im_start|>system\n{{ system or 'You are a helpful assistant.' }}\n\n# Tools\n\n"
    "Function signatures are inside <tools></tools>:\n<tools>"
    "{% for tool in tools %}" + NL + "{{ tool | tojson }}{% endfor %}" + NL + "</tools>\n\n"
    "To call a function, answer with a JSON object inside <tool_call></tool_call>:\n"
    '<tool_call>\n{"name": <function name>, "arguments": <arguments object>}\n'
    "</tool_call><|im_end|>\n"
    "{% elif system %}<|im_start|>system\n{{ system }}<|im_end|>\n"
    "{% endif %}"
    "{% for m in turns %}"
    "{% if m.role == 'assistant' and m.tool_calls %}"
    "<|im_start|>assistant\n{{ m.content or '' }}"
    "{% for call in m.tool_calls %}" + NL + "<tool_call>\n"
    '{"name": "{{ call.function.name }}", "arguments": {{ args_json(call) }}}\n</tool_call>'
    "{% endfor %}<|im_end|>\n"
    "{% elif m.role == 'tool' %}"
    "<|im_start|>user\n<tool_response>\n{{ m.content }}\n</tool_response><|im_end|>\n"
    "{% else %}"
    "<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# DeepSeek-R1: earlier answers lose their reasoning, and the generation
# prompt opens a <think> block, so the model's output starts with reasoning
# and the deepseek_r1 parser splits it at </think>.
DEEPSEEK_R1_TEMPLATE = (
    _SPLIT_SYSTEM + "{{ bos_token }}{{ system }}"
    "{% for m in turns %}"
    "{% if m.role == 'user' %}<｜User｜>{{ m.content }}"
    "{% elif m.role == 'tool' %}<｜tool▁output▁begin｜>{{ m.content }}<｜tool▁output▁end｜>"
    "{% elif m.role == 'assistant' %}"
    "<｜Assistant｜>{{ (m.content or '').split('</think>')[-1] }}<｜end▁of▁sentence｜>"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<｜Assistant｜><think>\n{% endif %}"
)

DEEPSEEK_V3_TEMPLATE = (
    _ARGS + _SPLIT_SYSTEM + "{{ bos_token }}{{ system }}"
    "{% if tools %}" + NL + NL + "## Tools\nYou may call these functions:"
    "{% for tool in tools %}" + NL + "{{ tool | tojson }}{% endfor %}{% endif %}"
    "{% for m in turns %}"
    "{% if m.role == 'user' %}<｜User｜>{{ m.content }}"
    "{% elif m.role == 'tool' %}<｜tool▁output▁begin｜>{{ m.content }}<｜tool▁output▁end｜>"
    "{% elif m.role == 'assistant' and m.tool_calls %}"
    "<｜Assistant｜><｜tool▁calls▁begin｜>"
    "{% for call in m.tool_calls %}"
    "<｜tool▁call▁begin｜>function<｜tool▁sep｜>{{ call.function.name }}\n"
    "```json\n{{ args_json(call) }}\n```<｜tool▁call▁end｜>"
    "{% endfor %}<｜tool▁calls▁end｜><｜end▁of▁sentence｜>"
    "{% elif m.role == 'assistant' %}"
    "<｜Assistant｜>{{ m.content }}<｜end▁of▁sentence｜>"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<｜Assistant｜>{% endif %}"
)


@dataclass(frozen=True, slots=True)
class TokenizerSpec:
    """What a family's tokenizer needs besides the learned vocabulary."""

    chat_template: str
    bos: str
    eos: str
    # Control tokens, hidden from decoded text.
    special: tuple[str, ...]
    # Markers that parsers look for in the text: single tokens, but visible.
    visible: tuple[str, ...] = field(default=())


_DEEPSEEK_CONTROL = (
    "<｜begin▁of▁sentence｜>",
    "<｜end▁of▁sentence｜>",
    "<｜User｜>",
    "<｜Assistant｜>",
)
_DEEPSEEK_TOOL_MARKERS = (
    "<｜tool▁calls▁begin｜>",
    "<｜tool▁calls▁end｜>",
    "<｜tool▁call▁begin｜>",
    "<｜tool▁call▁end｜>",
    "<｜tool▁sep｜>",
    "<｜tool▁output▁begin｜>",
    "<｜tool▁output▁end｜>",
)

TOKENIZER_SPECS: dict[str, TokenizerSpec] = {
    "llama3": TokenizerSpec(
        chat_template=LLAMA3_TEMPLATE,
        bos="<|begin_of_text|>",
        eos="<|eot_id|>",
        special=(
            "<|begin_of_text|>",
            "<|end_of_text|>",
            "<|start_header_id|>",
            "<|end_header_id|>",
            "<|eot_id|>",
            "<|eom_id|>",
            "<|python_tag|>",
        ),
    ),
    "qwen2": TokenizerSpec(
        chat_template=QWEN2_TEMPLATE,
        bos="<|endoftext|>",
        eos="<|im_end|>",
        special=("<|endoftext|>", "<|im_start|>", "<|im_end|>"),
        visible=("<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>"),
    ),
    "deepseek-r1": TokenizerSpec(
        chat_template=DEEPSEEK_R1_TEMPLATE,
        bos=_DEEPSEEK_CONTROL[0],
        eos=_DEEPSEEK_CONTROL[1],
        special=_DEEPSEEK_CONTROL,
        visible=("<think>", "</think>", *_DEEPSEEK_TOOL_MARKERS),
    ),
    "deepseek-v3": TokenizerSpec(
        chat_template=DEEPSEEK_V3_TEMPLATE,
        bos=_DEEPSEEK_CONTROL[0],
        eos=_DEEPSEEK_CONTROL[1],
        special=_DEEPSEEK_CONTROL,
        visible=("<think>", "</think>", *_DEEPSEEK_TOOL_MARKERS),
    ),
}
