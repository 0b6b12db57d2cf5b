"""A chat completion as the Response OpenAI returns."""

from __future__ import annotations

from gateway.responses import output


def test_items_from_a_reasoning_model_with_a_tool_call() -> None:
    choice = {
        "message": {
            "role": "assistant",
            "reasoning_content": "hmm",
            "content": "Calling",
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
            ],
        },
        "finish_reason": "tool_calls",
    }
    reasoning, message, call = output.output_items(choice, with_logprobs=False)
    assert reasoning["type"] == "reasoning" and reasoning["content"][0]["text"] == "hmm"
    assert message["content"] == [
        {"type": "output_text", "text": "Calling", "annotations": [], "logprobs": []}
    ]
    assert call["type"] == "function_call" and call["call_id"] == "call_1"
    assert all(item["status"] == "completed" for item in (reasoning, message, call))


def test_a_call_alone_has_no_message() -> None:
    choice = {
        "message": {
            "content": None,
            "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "{}"}}],
        },
        "finish_reason": "tool_calls",
    }
    assert [i["type"] for i in output.output_items(choice, False)] == ["function_call"]


def test_usage_in_responses_terms() -> None:
    usage = output.usage(
        {
            "prompt_tokens": 10,
            "completion_tokens": 4,
            "total_tokens": 14,
            "prompt_tokens_details": {"cached_tokens": 6},
            "completion_tokens_details": {"reasoning_tokens": 3},
        }
    )
    assert usage == {
        "input_tokens": 10,
        "input_tokens_details": {"cached_tokens": 6, "cache_write_tokens": 0},
        "output_tokens": 4,
        "output_tokens_details": {"reasoning_tokens": 3},
        "total_tokens": 14,
    }


def test_echo_then_finished_statuses() -> None:
    body = {"model": "m", "instructions": "be nice", "metadata": {"a": "b"}, "temperature": 0.3}
    response = output.echo(body, response_id="resp_1", model="m", store=False, conversation="c1")
    assert response["status"] == "in_progress" and response["output"] == []
    assert response["conversation"] == {"id": "c1"} and response["instructions"] == "be nice"
    assert response["temperature"] == 0.3 and response["top_p"] is None
    done = output.finished(response, [], None, "content_filter")
    assert done["status"] == "incomplete"
    assert done["incomplete_details"] == {"reason": "content_filter"}
    assert output.finished(response, [], None, "stop")["completed_at"] is not None
