"""The cluster behind one error vocabulary: REST calls through the official kubernetes client.

Reads and writes go through the client's `ApiClient` (its kubeconfig and in-cluster loading,
its authentication and TLS), but bodies are plain JSON: a LIST of a thousand Deployments is
parsed with `json.loads`, not turned into model objects, which costs many times the request.
Every failure becomes `NotFound`, `Conflict`, `Rejected` or `BackendUnavailable` with one
sentence naming what was being done; nothing the kubeconfig holds (tokens, keys) is printed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from declserve.backends.kubernetes.settings import MANAGER, KubernetesSettings
from declserve.errors import BackendUnavailable, Conflict, NotFound, Rejected

Obj = dict[str, Any]
TIMEOUT = (5.0, 60.0)  # connect, read: an API server that does not answer fails the command

# Where each kind lives, relative to a namespace.
PATHS = {
    "Deployment": "/apis/apps/v1/namespaces/{ns}/deployments",
    "ReplicaSet": "/apis/apps/v1/namespaces/{ns}/replicasets",
    "Service": "/api/v1/namespaces/{ns}/services",
    "ConfigMap": "/api/v1/namespaces/{ns}/configmaps",
    "Pod": "/api/v1/namespaces/{ns}/pods",
    "Lease": "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases",
    "Event": "/api/v1/namespaces/{ns}/events",
    "InferenceService": "/apis/serving.kserve.io/v1beta1/namespaces/{ns}/inferenceservices",
}


def _api_client(s: KubernetesSettings) -> client.ApiClient:
    cfg = client.Configuration()
    try:
        if s.kubeconfig:
            config.load_kube_config(  # type: ignore[no-untyped-call]
                s.kubeconfig, s.context, cfg, persist_config=False
            )
        elif os.environ.get("KUBERNETES_SERVICE_HOST") and not (
            s.context or os.environ.get("KUBECONFIG")
        ):
            # in a pod, its service account, unless a kubeconfig is named (as kubectl does)
            config.load_incluster_config(cfg)  # type: ignore[no-untyped-call]
        else:
            path = os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] or str(
                Path.home() / ".kube" / "config"
            )
            config.load_kube_config(  # type: ignore[no-untyped-call]
                path, s.context, cfg, persist_config=False
            )
    except (ConfigException, OSError, ValueError) as exc:
        raise BackendUnavailable(f"cannot load the Kubernetes configuration: {exc}") from exc
    if urlsplit(cfg.host).hostname in ("127.0.0.1", "localhost", "::1"):
        cfg.proxy = None  # a local API server is never reached through an HTTP proxy
    cfg.retries = 1
    return client.ApiClient(cfg)


def _reason(status: int, body: bytes) -> str:
    try:
        doc = json.loads(body)
        return str(doc.get("message") or doc.get("reason") or status)
    except ValueError:
        return body.decode(errors="replace").strip()[:300] or str(status)


class Kube:
    def __init__(self, settings: KubernetesSettings) -> None:
        self.settings = settings
        self.api = _api_client(settings)
        self.namespace = settings.namespace

    @property
    def host(self) -> str:
        return str(self.api.configuration.host)

    def path(self, kind: str, name: str = "", namespace: str | None = None) -> str:
        base = PATHS[kind].format(ns=namespace or self.namespace)
        return f"{base}/{name}" if name else base

    def _call(
        self,
        method: str,
        path: str,
        what: str,
        *,
        query: dict[str, Any] | None = None,
        body: Obj | None = None,
        content_type: str = "application/json",
        stream: bool = False,
        timeout: Any = TIMEOUT,
    ) -> Any:
        headers = {"Accept": "application/json", "Content-Type": content_type}
        try:
            method, url, headers, _, _ = self.api.param_serialize(
                method, path, header_params=headers, auth_settings=["BearerToken"]
            )
            if query:
                url += "?" + urlencode(query)
            # the client serializes a mapping as JSON for every JSON and YAML content type
            response = self.api.call_api(method, url, headers, body, _request_timeout=timeout)
        except ApiException as exc:  # raised for TLS failures, before any status
            raise BackendUnavailable(f"cannot reach the Kubernetes API server to {what}: "
                                     f"{exc.reason}") from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise BackendUnavailable(
                f"cannot reach the Kubernetes API server at {self.host} to {what}: "
                f"{type(exc).__name__}"
            ) from exc
        if stream:
            if response.status >= 400:
                self._raise(response.status, response.read(), what)  # type: ignore[no-untyped-call]
            return response.response
        raw = response.read()  # type: ignore[no-untyped-call]
        if response.status >= 400:
            self._raise(response.status, raw, what)
        return json.loads(raw) if raw else {}

    def _raise(self, status: int, raw: bytes, what: str) -> None:
        reason = _reason(status, raw)
        if status == 404:
            raise NotFound(f"cannot {what}: {reason}")
        if status == 409:
            raise Conflict(f"cannot {what}: {reason}")
        if status in (401, 403):
            raise Rejected(f"the Kubernetes API server does not allow declserve to {what}: "
                           f"{reason}")
        if status >= 500:
            raise BackendUnavailable(f"the Kubernetes API server failed to {what}: {reason}")
        raise Rejected(f"the Kubernetes API server refused to {what}: {reason}")

    # ---- reads ----------------------------------------------------------------------------
    def list(self, kind: str, selector: str = "", fields: str = "") -> list[Obj]:
        query = {k: v for k, v in (("labelSelector", selector), ("fieldSelector", fields)) if v}
        doc = self._call("GET", self.path(kind), f"list {kind}s in namespace {self.namespace}",
                         query=query)
        return list(doc.get("items") or [])

    def get(self, kind: str, name: str) -> Obj | None:
        try:
            doc: Obj = self._call("GET", self.path(kind, name), f"read {kind} {name}")
            return doc
        except NotFound:
            return None

    def logs(self, pod: str, container: str, tail: int, follow: bool) -> Iterator[bytes]:
        query = {"container": container, "tailLines": tail, "follow": str(follow).lower()}
        response = self._call("GET", self.path("Pod", pod) + "/log", f"read the log of {pod}",
                              query=query, stream=True, timeout=(5.0, None) if follow else TIMEOUT)
        try:
            yield from response.stream(4096)
        finally:
            response.release_conn()

    def pod_proxy_get(self, pod: str, port: int, path: str, timeout: float = 2.0) -> Obj:
        """GET `path` of a pod's port through the API server's pod proxy: a JSON object (the
        caller needs no route to the pod)."""
        doc = self._call("GET", f"{self.path('Pod', f'{pod}:{port}')}/proxy/{path.lstrip('/')}",
                         f"read {path} of pod {pod}", timeout=(timeout, timeout))
        return doc if isinstance(doc, dict) else {}

    # ---- writes ---------------------------------------------------------------------------
    def apply(self, manifest: Obj, force: bool = True) -> Obj:
        """Server-side apply as declserve's field manager."""
        kind, name = manifest["kind"], manifest["metadata"]["name"]
        query = {"fieldManager": MANAGER, "force": str(force).lower()}
        doc: Obj = self._call("PATCH", self.path(kind, name), f"apply {kind} {name}",
                              query=query, body=manifest,
                              content_type="application/apply-patch+yaml")
        return doc

    def create(self, kind: str, body: Obj) -> Obj:
        doc: Obj = self._call("POST", self.path(kind), f"create {kind} "
                              f"{body['metadata']['name']}", body=body)
        return doc

    def replace(self, kind: str, body: Obj) -> Obj:
        name = body["metadata"]["name"]
        doc: Obj = self._call("PUT", self.path(kind, name), f"update {kind} {name}", body=body)
        return doc

    def patch(self, kind: str, name: str, body: Obj, manager: str) -> Obj:
        doc: Obj = self._call("PATCH", self.path(kind, name), f"change {kind} {name}",
                              query={"fieldManager": manager}, body=body,
                              content_type="application/merge-patch+json")
        return doc

    def delete(self, kind: str, name: str, precondition: Obj | None = None) -> bool:
        """Delete; False when it was gone already."""
        body = {"kind": "DeleteOptions", "apiVersion": "v1",
                "propagationPolicy": "Background", **(precondition or {})}
        try:
            self._call("DELETE", self.path(kind, name), f"delete {kind} {name}", body=body)
            return True
        except NotFound:
            return False
