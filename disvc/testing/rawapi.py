"""Raw JSON requests through the ``kubernetes`` client's ApiClient.

CRDs (a 2 MB schema for KServe's) and arbitrary YAML go through raw JSON:
the typed client would turn them into models for nothing, and some typed
calls drop the body of a 201 answer.
"""

from __future__ import annotations

import json
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

JsonObject = dict[str, Any]


def status_of(error: ApiException) -> JsonObject:
    """The ``Status`` object in an error answer (reason, message, details, code)."""
    body: JsonObject = json.loads(error.body or "{}")
    return body


def request_json(
    api_client: client.ApiClient,
    method: str,
    path: str,
    *,
    body: object = None,
    query: list[tuple[str, str]] | None = None,
    content_type: str = "application/json",
) -> JsonObject:
    """One authenticated request with a JSON body; the decoded JSON answer.

    Raises ``ApiException`` (its status, reason and body) on a non-2xx
    answer, the same as the typed client does.
    """
    headers = {"Accept": "application/json"}
    if body is not None:
        headers["Content-Type"] = content_type
    method, url, headers, body, _ = api_client.param_serialize(
        method=method,
        resource_path=path,
        query_params=query or [],
        header_params=headers,
        body=body,
        auth_settings=["BearerToken"],
    )
    response = api_client.call_api(method, url, header_params=headers, body=body)
    response.read()  # type: ignore[no-untyped-call]
    if not 200 <= response.status <= 299:
        api_client.response_deserialize(response, {})  # raises ApiException
    data = response.data
    answer: JsonObject = json.loads(data) if data else {}
    return answer
