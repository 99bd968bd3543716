"""Tiny raw-HTTP helpers for the substrate's own tests (no client library,
so what is asserted is exactly what the server sent)."""

from __future__ import annotations

import http.client
import json
from typing import Any
from urllib.parse import urlsplit


def call(
    url: str,
    method: str,
    path: str,
    body: Any = None,
    *,
    content_type: str = "application/json",
    user_agent: str = "substrate-test/1.0",
) -> tuple[int, dict[str, str], Any]:
    """(status, headers, decoded JSON body) of one request."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
    try:
        payload = None if body is None else json.dumps(body).encode()
        headers = {"User-Agent": user_agent}
        if payload is not None:
            headers["Content-Type"] = content_type
        conn.request(method, path, body=payload, headers=headers)
        response = conn.getresponse()
        raw = response.read()
        decoded = json.loads(raw) if raw and response.getheader("Content-Type", "").startswith("application/json") else raw
        return response.status, dict(response.getheaders()), decoded
    finally:
        conn.close()


def config_map(name: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}
