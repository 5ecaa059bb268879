"""Cassette hygiene: scrub secrets and identifying headers, store JSON bodies readably.

JSON bodies are stored as YAML structures (vcrpy's body matcher compares JSON bodies
parsed, so replay still matches exactly on content).
"""

from __future__ import annotations

import json
from typing import Any

import yaml

DROP_REQUEST_HEADERS = {
    "authorization",
    "cookie",
    "openai-organization",
    "openai-project",
    "api-key",
}
DROP_RESPONSE_HEADERS = {"set-cookie", "openai-organization", "openai-project", "content-length"}


def _drop(headers: dict[str, Any], names: set[str]) -> dict[str, Any]:
    return {
        k: v
        for k, v in headers.items()
        if k.lower() not in names and not k.lower().startswith(("x-", "cf-"))
    }


def scrub_request(request: Any) -> Any:
    request.headers = _drop(dict(request.headers), DROP_REQUEST_HEADERS)
    return request


def scrub_response(response: dict[str, Any]) -> dict[str, Any]:
    response["headers"] = _drop(response.get("headers", {}), DROP_RESPONSE_HEADERS)
    return response


def _to_json(body: Any) -> Any:
    text = body.decode() if isinstance(body, bytes) else body
    if isinstance(text, str) and text[:1] in "{[":
        try:
            return {"json": json.loads(text)}
        except ValueError:
            pass
    return body


def _from_json(body: Any) -> Any:
    if isinstance(body, dict) and set(body) == {"json"}:
        return json.dumps(body["json"])
    return body


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


class ReadableYaml:
    """vcrpy serializer: YAML with JSON request/response bodies as structures."""

    @staticmethod
    def serialize(cassette: dict[str, Any]) -> str:
        for item in cassette.get("interactions", []):
            item["request"]["body"] = _to_json(item["request"].get("body"))
            resp = item["response"].get("body", {})
            if isinstance(resp, dict) and "string" in resp:
                resp["string"] = _to_json(resp["string"])
        return yaml.dump(cassette, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)

    @staticmethod
    def deserialize(text: str) -> dict[str, Any]:
        cassette = yaml.safe_load(text)
        for item in cassette.get("interactions", []):
            item["request"]["body"] = _from_json(item["request"].get("body"))
            resp = item["response"].get("body", {})
            if isinstance(resp, dict) and "string" in resp:
                resp["string"] = _from_json(resp["string"])
        return cassette


def vcr_config() -> dict[str, Any]:
    """Matching on method + path + body (never headers), scrubbed, readable."""
    return {
        "match_on": ["method", "path", "body"],
        "before_record_request": scrub_request,
        "before_record_response": scrub_response,
        "decode_compressed_response": True,
        "allow_playback_repeats": False,
    }
