"""The plugin's way to the API: connection settings as kubectl picks them, and
the few requests the verbs make.

kubectl's rules, in its order: ``--kubeconfig`` names the file, else
``$KUBECONFIG`` (a list of files joined with ``:``, merged), else
``~/.kube/config``; ``--context`` picks a context, else the file's
``current-context``; ``-n`` picks the namespace, else the context's, else
``default``. Every problem comes back as ``CliError``, one line for the user.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from urllib3.exceptions import HTTPError

from disvc.builders import history, names
from disvc.builders.types import Obj
from disvc.cli.errors import CliError

GROUP: Final = "serving.kserve.io"
DISVC_PLURAL: Final = "distributedinferenceservices"
DISVC_PATH: Final = f"/apis/{GROUP}/v1alpha1"
ISVC_PATH: Final = f"/apis/{GROUP}/v1beta1"
RESOURCE: Final = f"distributedinferenceservice.{GROUP}"
"""How kubectl names the resource in what it prints (``<resource>/<name> patched``)."""
DEFAULT_KUBECONFIG: Final = "~/.kube/config"
REQUEST_TIMEOUT: Final = 30.0


@dataclass(frozen=True, slots=True)
class Target:
    """Where to connect: what the user passed, before any file is read."""

    kubeconfig: str | None = None
    context: str | None = None
    namespace: str | None = None


def kubeconfig_files(target: Target) -> str:
    """The kubeconfig path(s) kubectl would read, joined as ``$KUBECONFIG`` is."""
    if target.kubeconfig:
        return target.kubeconfig
    return os.environ.get("KUBECONFIG") or os.path.expanduser(DEFAULT_KUBECONFIG)


class Api:
    """DISVC reads and writes in one namespace, over a kubeconfig's credentials."""

    def __init__(self, api_client: client.ApiClient, namespace: str) -> None:
        self.api_client = api_client
        self.namespace = namespace

    @classmethod
    def connect(cls, target: Target) -> Api:
        files = kubeconfig_files(target)
        try:
            api_client = config.new_client_from_config(config_file=files, context=target.context)  # type: ignore[no-untyped-call]
            namespace = target.namespace or _context_namespace(files, target.context)
        except (ConfigException, OSError, ValueError, TypeError) as problem:
            raise CliError(f"cannot load kubeconfig {files}: {problem}") from problem
        return cls(api_client, namespace)

    def close(self) -> None:
        self.api_client.close()  # type: ignore[no-untyped-call]

    def disvc_path(self, name: str = "") -> str:
        tail = f"/{name}" if name else ""
        return f"{DISVC_PATH}/namespaces/{self.namespace}/{DISVC_PLURAL}{tail}"

    def get(self, name: str) -> Obj:
        """The DISVC ``name``; a missing one is a ``CliError`` naming the namespace."""
        try:
            return self._json("GET", self.disvc_path(name))
        except ApiException as error:
            if error.status == 404:
                raise CliError(f'{RESOURCE} "{name}" not found in namespace "{self.namespace}"') from error
            raise _failed(error, "get", name) from error

    def revisions(self, name: str) -> list[Obj]:
        """The ControllerRevisions that keep the DISVC ``name``'s templates
        (by its ``disvc`` label); none when the user may not list them."""
        path = f"/apis/apps/v1/namespaces/{self.namespace}/controllerrevisions"
        try:
            listing = self._json("GET", path, query=[("labelSelector", names.selector(name))])
        except ApiException as error:
            if error.status in (403, 404):
                return []  # entries that still carry their template keep working
            raise _failed(error, "list ControllerRevisions of", name) from error
        items = listing.get("items")
        return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []

    def get_with_history(self, name: str) -> Obj:
        """The DISVC ``name``, each ``status.history`` entry carrying the template
        its ControllerRevision keeps (``history.resolved``)."""
        return history.resolved(self.get(name), self.revisions(name))

    def isvcs(self, name: str) -> list[Obj]:
        """The InferenceServices the DISVC ``name`` owns (by its ``disvc`` label)."""
        path = f"{ISVC_PATH}/namespaces/{self.namespace}/inferenceservices"
        try:
            listing = self._json("GET", path, query=[("labelSelector", names.selector(name))])
        except ApiException as error:
            if error.status == 404:
                return []  # no InferenceService CRD: nothing to show
            raise _failed(error, "list InferenceServices of", name) from error
        items = listing.get("items")
        return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []

    def json_patch(self, name: str, operations: list[Obj]) -> Obj:
        """Apply a JSON patch (RFC 6902) to the DISVC. An operation that sets
        ``/metadata/resourceVersion`` makes it conditional: the server refuses
        it with 409 when the DISVC changed since that version."""
        try:
            return self._json(
                "PATCH", self.disvc_path(name), body=operations, content_type="application/json-patch+json"
            )
        except ApiException as error:
            if error.status == 409:
                raise CliError(
                    f"{RESOURCE}/{name} changed while this command ran; nothing was changed, run it again"
                ) from error
            raise _failed(error, "patch", name) from error

    def wait_for_change(self, name: str, resource_version: str, seconds: float) -> None:
        """Return once the DISVC changes after ``resource_version`` (or is
        deleted), or after ``seconds``, whichever is first."""
        query = [
            ("watch", "true"),
            ("fieldSelector", f"metadata.name={name}"),
            ("resourceVersion", resource_version),
            ("allowWatchBookmarks", "false"),
            ("timeoutSeconds", str(max(1, int(seconds)))),
        ]
        try:
            response = self._send("GET", self.disvc_path(), query=query, timeout=(REQUEST_TIMEOUT, seconds + 5))
            if response.status != 200:
                return  # an expired version or a refused watch: the caller reads afresh
            for line in _lines(response.response):
                if json.loads(line).get("type") in {"ADDED", "MODIFIED", "DELETED", "ERROR"}:
                    return
        except (HTTPError, CliError, ValueError):
            return  # the stream broke or timed out: the same

    def _json(
        self,
        method: str,
        path: str,
        body: object = None,
        query: list[tuple[str, str]] | None = None,
        content_type: str = "application/json",
    ) -> Obj:
        """One request; the decoded answer, or ``ApiException`` for a non-2xx one."""
        response = self._send(method, path, body, query, content_type)
        response.read()
        if not 200 <= response.status <= 299:
            self.api_client.response_deserialize(response, {})  # raises ApiException
        decoded: Any = json.loads(response.data or b"{}")
        return decoded if isinstance(decoded, dict) else {}

    def _send(
        self,
        method: str,
        path: str,
        body: object = None,
        query: list[tuple[str, str]] | None = None,
        content_type: str = "application/json",
        timeout: float | tuple[float, float] = REQUEST_TIMEOUT,
    ) -> Any:
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type
        method, url, headers, body, _ = self.api_client.param_serialize(
            method=method,
            resource_path=path,
            query_params=query or [],
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        try:
            return self.api_client.call_api(method, url, header_params=headers, body=body, _request_timeout=timeout)
        except HTTPError as problem:
            host = self.api_client.configuration.host
            raise CliError(f"cannot reach the API server {host}: {problem}") from problem


def _lines(response: Any) -> Iterator[bytes]:
    pending = b""
    try:
        for chunk in response.stream(4096, decode_content=False):
            pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                if line.strip():
                    yield line
    finally:
        response.release_conn()


def _context_namespace(files: str, context: str | None) -> str:
    contexts, current = config.list_kube_config_contexts(files)  # type: ignore[no-untyped-call]
    chosen = current
    if context is not None:
        chosen = next((c for c in contexts or [] if c.get("name") == context), None)
    namespace = ((chosen or {}).get("context") or {}).get("namespace")
    return str(namespace) if namespace else "default"


def _failed(error: ApiException, doing: str, name: str) -> CliError:
    reason = error.reason or "error"
    try:
        message = json.loads(error.body or "{}").get("message") or reason
    except (ValueError, AttributeError):
        message = reason
    return CliError(f"cannot {doing} {RESOURCE}/{name}: {error.status} {message}")
