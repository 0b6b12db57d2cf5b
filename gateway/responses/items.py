"""Items: what a Responses conversation is made of, as OpenAI returns them.

``input_items`` turns a request's ``input`` (a string, or a list of items) into
items as they are stored and listed (each with an id and a status; message
content always a list of parts). ``chat_messages`` turns items (a rebuilt
history and the new input) into chat completion messages: user, system and
developer messages keep their parts, assistant messages and function calls of
one turn become one assistant message with ``tool_calls``, function outputs
become ``tool`` messages, reasoning items are not sent back (DeepSeek refuses
its own reasoning in a prompt).
"""

from __future__ import annotations

from typing import Any

from gateway.responses.ids import new_id
from gateway.responses.tools import ToolKinds, unsupported

Body = dict[str, Any]
_CHAT_ROLES = {"user": "user", "assistant": "assistant", "system": "system", "developer": "system"}


def input_items(value: str | list[Body] | None, kinds: ToolKinds) -> list[Body]:
    """The request's ``input`` as stored items (refusing what no backend can take)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [user_message(value)]
    return [_normalize(item, f"input[{index}]", kinds) for index, item in enumerate(value)]


def user_message(text: str) -> Body:
    return {
        "id": new_id("msg"),
        "type": "message",
        "role": "user",
        "content": [{"type": "input_text", "text": text}],
        "status": "completed",
    }


def _normalize(item: Body, param: str, kinds: ToolKinds) -> Body:
    kind = item.get("type") or "message"
    if kind == "message":
        return _message(item, param)
    if kind == "reasoning":
        return {
            "id": item.get("id") or new_id("rs"),
            "type": "reasoning",
            "summary": item.get("summary") or [],
            **{k: item[k] for k in ("content", "encrypted_content") if item.get(k) is not None},
            "status": "completed",
        }
    return kinds.item_kind(kind, f"{param}.type").normalize(item, param)


def _message(item: Body, param: str) -> Body:
    role = item["role"]
    content = item["content"]
    text_type = "output_text" if role == "assistant" else "input_text"
    if isinstance(content, str):
        parts: list[Body] = [{"type": text_type, "text": content}]
    else:
        parts = [
            _part(part, role, f"{param}.content[{index}]") for index, part in enumerate(content)
        ]
    if role == "assistant":
        for part in parts:
            if part["type"] == "output_text":
                part.setdefault("annotations", [])
    return {
        "id": item.get("id") or new_id("msg"),
        "type": "message",
        "role": role,
        "content": parts,
        "status": "completed",
    }


def _part(part: Body, role: str, param: str) -> Body:
    kind = part["type"]
    if role == "assistant" and kind not in ("output_text", "refusal", "input_text"):
        raise unsupported(f"Assistant messages cannot hold '{kind}' parts.", f"{param}.type")
    if kind == "input_image" and not part.get("image_url"):
        raise unsupported(
            "Images by file_id are not supported by this gateway; send image_url "
            "(an http(s) or data: URL).",
            f"{param}.file_id",
        )
    if kind == "input_file" and not part.get("file_data"):
        raise unsupported(
            "Files by file_id or file_url are not supported by this gateway; send file_data.",
            f"{param}.file_data",
        )
    if role == "assistant" and kind == "input_text":
        return {"type": "output_text", "text": part["text"], "annotations": []}
    return dict(part)


def chat_messages(items: list[Body], kinds: ToolKinds) -> list[Body]:
    """Chat completion messages for ``items``, in order."""
    messages: list[Body] = []
    for item in items:
        kind = item.get("type") or "message"
        if kind == "message":
            messages.append(_chat_message(item))
        elif kind != "reasoning":
            kinds.item_kind(kind, "input").add_messages(item, messages)
    return messages


def _chat_message(item: Body) -> Body:
    role = _CHAT_ROLES[item["role"]]
    parts = item["content"]
    if len(parts) == 1 and parts[0]["type"] in ("input_text", "output_text"):
        return {"role": role, "content": parts[0]["text"]}  # the common case, at once
    if role == "assistant":
        text = "".join(p.get("text", "") for p in parts if p["type"] == "output_text")
        message: Body = {"role": "assistant", "content": text}
        refusal = "".join(p["refusal"] for p in parts if p["type"] == "refusal")
        if refusal:
            message["refusal"] = refusal
        return message
    chat_parts = [_chat_part(part) for part in parts]
    if len(chat_parts) == 1 and chat_parts[0]["type"] == "text":
        return {"role": role, "content": chat_parts[0]["text"]}
    return {"role": role, "content": chat_parts}


def _chat_part(part: Body) -> Body:
    kind = part["type"]
    if kind in ("input_text", "output_text"):
        return {"type": "text", "text": part["text"]}
    if kind == "refusal":
        return {"type": "text", "text": part["refusal"]}
    if kind == "input_image":
        image: Body = {"url": part["image_url"]}
        if part.get("detail") in ("auto", "low", "high"):
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    if kind == "input_file":
        file: Body = {"file_data": part["file_data"]}
        if part.get("filename"):
            file["filename"] = part["filename"]
        return {"type": "file", "file": file}
    return {"type": "input_audio", "input_audio": part["input_audio"]}
