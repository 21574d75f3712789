"""The Docker engine behind one error vocabulary: every SDK failure becomes a declserve error.

`engine_errors(what)` wraps a block of SDK calls and raises, `from` the SDK's exception,
`NotFound`, `Conflict`, `Rejected` or `BackendUnavailable` with one sentence naming what was
being done. Only the Docker backend's modules use the SDK, and only through this wrapper.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import docker
import docker.errors
import requests

from declserve.errors import BackendUnavailable, Conflict, NotFound, Rejected


def _explanation(exc: docker.errors.APIError) -> str:
    text = exc.explanation if isinstance(exc.explanation, str) else str(exc)
    return text.strip() or str(exc)


@contextmanager
def engine_errors(what: str) -> Iterator[None]:
    try:
        yield
    except docker.errors.NotFound as exc:
        raise NotFound(f"cannot {what}: {_explanation(exc)}") from exc
    except docker.errors.APIError as exc:
        status = exc.status_code or 0
        if status == 409:
            raise Conflict(f"cannot {what}: {_explanation(exc)}") from exc
        if 400 <= status < 500:
            raise Rejected(f"the Docker engine refused to {what}: {_explanation(exc)}") from exc
        raise Rejected(f"the Docker engine failed to {what}: {_explanation(exc)}") from exc
    except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as exc:
        raise BackendUnavailable(f"cannot reach the Docker engine to {what}: {exc}") from exc


def connect(base_url: str | None) -> docker.DockerClient:
    try:
        # Creating the client already asks the engine for its API version, so an engine that
        # is down fails here; no separate ping.
        if base_url:
            return docker.DockerClient(base_url=base_url, version="auto")
        return docker.from_env(version="auto")
    except (docker.errors.DockerException, OSError, requests.exceptions.RequestException) as exc:
        where = base_url or os.environ.get("DOCKER_HOST") or "the local socket"
        raise BackendUnavailable(
            f"cannot reach the Docker engine at {where}: is dockerd running?"
        ) from exc


def update_limits(api: docker.APIClient, cid: str, body: dict[str, Any]) -> None:
    """`docker update` with NanoCpus, which the SDK's update_container cannot send.

    The low-level client is a requests session: its public `post` reaches the engine's
    update endpoint at the API version the client negotiated.
    """
    url = f"{api.base_url}/v{api.api_version}/containers/{cid}/update"
    response = api.post(url, json=body, timeout=30)
    if response.status_code >= 400:
        try:
            message = response.json().get("message", response.text)
        except ValueError:
            message = response.text
        if response.status_code == 404:
            raise NotFound(f"cannot change the limits of container {cid[:12]}: {message}")
        raise Rejected(f"the Docker engine refused to change the limits of {cid[:12]}: {message}")
