"""The chat client against a real HTTP server on loopback (a stand-in OpenAI endpoint)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from agent.chat import OpenAIChatModel
from agent.settings import Settings
from tools.errors import LLMError


def _completion(finish_reason: str, content: str | None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": finish_reason,
            }
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 0, "total_tokens": 5},
    }


@pytest.fixture
def endpoint() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A loopback endpoint answering each POST with the next queued completion."""
    queue: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["content-length"]))
            body = json.dumps(queue.pop(0)).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/v1", queue
    finally:
        server.shutdown()
        server.server_close()


def _model(base_url: str) -> OpenAIChatModel:
    return OpenAIChatModel(
        Settings(llm_base_url=base_url, llm_api_key="not-a-real-key", llm_max_retries=0)
    )


def test_a_content_filter_finish_is_reported_as_such(endpoint) -> None:
    base_url, queue = endpoint
    queue.append(_completion("content_filter", None))
    with pytest.raises(LLMError, match="content filter"):
        _model(base_url).chat([{"role": "user", "content": "hi"}])


def test_an_ordinary_answer_comes_back_with_its_usage(endpoint) -> None:
    base_url, queue = endpoint
    queue.append(_completion("stop", '{"category": "model_error"}'))
    result = _model(base_url).chat([{"role": "user", "content": "hi"}])
    assert result.content == '{"category": "model_error"}' and result.prompt_tokens == 5
    assert result.finish_reason == "stop"
