"""Measuring a canary's analysis queries on a Prometheus-compatible HTTP API.

``Prometheus`` asks ``/api/v1/query`` for an instant query's single value, as
Prometheus documents the API (docs/querying/api.md: ``status``, ``data``
with ``resultType`` ``vector`` or ``scalar``, ``errorType``/``error`` on
failure); Thanos, Mimir and VictoriaMetrics serve the same API. A bearer
token is read from its file on every request (projected service-account
tokens rotate); a CA file verifies a private certificate.

``Analyst`` is what the reconciler calls when ``builders.analysis`` says a
measurement is due: it runs each query, turns every outcome into a
``Sample`` (a value, no data, an error, or a query Prometheus refused with
its own words), and counts the verdicts in
``disvc_analysis_measurements_total``. Nothing here decides anything: the
verdicts that move the canary are the builders'.
"""

from __future__ import annotations

import json
import math
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

import structlog

from disvc.builders import analysis
from disvc.builders.types import ObjectKey

log = structlog.get_logger(__name__)

QUERY_PATH: Final = "/api/v1/query"
DEFAULT_TIMEOUT: Final = 10.0
NOT_CONFIGURED: Final = "the controller runs without --prometheus-url: nothing can measure the analysis"


class QueryError(Exception):
    """No value for a query; ``str()`` says why in Prometheus's words where it gave some."""

    def __init__(self, message: str, invalid: bool = False) -> None:
        super().__init__(message)
        self.invalid = invalid
        """The query itself is refused (``bad_data``) or cannot give one value:
        asking again cannot help until the spec changes."""


class Prometheus:
    """A client of one Prometheus-compatible query endpoint."""

    def __init__(
        self,
        url: str,
        bearer_token_file: str | None = None,
        ca_file: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.url = url.rstrip("/")
        self.bearer_token_file = bearer_token_file
        self.timeout = timeout
        self._context = ssl.create_default_context(cafile=ca_file) if ca_file else None

    def query(self, promql: str) -> tuple[float | None, str | None]:
        """The query's single value and its text as Prometheus wrote it;
        ``(None, None)`` when it returned no data. Raises ``QueryError``."""
        body = urllib.parse.urlencode({"query": promql}).encode()
        request = urllib.request.Request(
            self.url + QUERY_PATH,
            data=body,
            method="POST",
            headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"},
        )
        token = self._token()
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout, context=self._context) as response:
                answer = json.loads(response.read())
        except urllib.error.HTTPError as error:
            raise _http_error(error) from error
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise QueryError(f"Prometheus at {self.url} unreachable: {reason}") from error
        except ValueError as error:
            raise QueryError(f"Prometheus at {self.url} answered something that is not JSON") from error
        return _value(answer)

    def _token(self) -> str | None:
        if not self.bearer_token_file:
            return None
        try:
            return Path(self.bearer_token_file).read_text().strip()
        except OSError as error:
            raise QueryError(f"cannot read --prometheus-bearer-token-file: {error}") from error


def _http_error(error: urllib.error.HTTPError) -> QueryError:
    try:
        answer = json.loads(error.read())
    except (ValueError, OSError):
        answer = None
    if isinstance(answer, dict) and answer.get("status") == "error":
        kind = str(answer.get("errorType", ""))
        text = f"Prometheus refused the query ({kind}): {answer.get('error', '')}"
        # bad_data: the query does not parse; the same words come back every time
        return QueryError(text, invalid=kind == "bad_data")
    return QueryError(f"Prometheus answered HTTP {error.code} {error.reason}")


def _value(answer: Any) -> tuple[float | None, str | None]:
    if not isinstance(answer, dict) or answer.get("status") != "success":
        error = answer.get("error") if isinstance(answer, dict) else None
        raise QueryError(f"Prometheus answered an error: {error or answer!r}")
    data = answer.get("data") or {}
    kind, result = data.get("resultType"), data.get("result")
    if kind == "scalar" and isinstance(result, list) and len(result) == 2:
        return _number(result[1])
    if kind == "vector" and isinstance(result, list):
        if not result:
            return None, None
        if len(result) > 1:
            raise QueryError(
                f"the query returned {len(result)} series, not one value; aggregate it (sum, max, avg)",
                invalid=True,
            )
        return _number(result[0].get("value", [None, None])[1])
    raise QueryError(f"the query returned a {kind}, not one value (an instant vector or a scalar)", invalid=True)


def _number(text: object) -> tuple[float | None, str | None]:
    try:
        value = float(str(text))
    except ValueError as error:
        raise QueryError(f"Prometheus returned a value that is not a number: {text!r}") from error
    return value, str(text)


Count = Callable[[str, str, str, str], None]
"""``count(namespace, name, metric, result)``: one measurement's verdict, lowercase."""


class Analyst:
    """Measures the queries a canary analysis asks for (``DisvcReconciler.measure``)."""

    def __init__(self, prometheus: Prometheus | None, count: Count | None = None) -> None:
        self.prometheus = prometheus
        self.count = count

    def __call__(self, key: ObjectKey, queries: Sequence[analysis.Query]) -> analysis.Measured:
        samples = tuple(self._sample(query) for query in queries)
        for query, sample in zip(queries, samples):
            result = analysis.verdict(query, sample)
            if self.count is not None:
                self.count(key.namespace, key.name, query.metric, result.lower())
            log.info(
                "Measured canary metric",
                metric=query.metric,
                value=sample.text,
                verdict=result,
                detail=sample.error,
            )
        return analysis.Measured(samples)

    def _sample(self, query: analysis.Query) -> analysis.Sample:
        if self.prometheus is None:
            return analysis.Sample(query.metric, error=NOT_CONFIGURED, invalid=True)
        try:
            value, text = self.prometheus.query(query.promql)
        except QueryError as problem:
            return analysis.Sample(query.metric, error=str(problem), invalid=problem.invalid)
        if value is not None and math.isnan(value):
            return analysis.Sample(query.metric, text=text)
        return analysis.Sample(query.metric, value=value, text=text)
