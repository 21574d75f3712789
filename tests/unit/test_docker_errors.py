"""Every Docker SDK failure leaves the backend as one of declserve's errors, raised from it."""

from __future__ import annotations

import docker.errors
import pytest
import requests

from declserve.backends.docker.engine import engine_errors
from declserve.errors import BackendUnavailable, Conflict, DeclserveError, NotFound, Rejected


def api_error(status: int, text: str) -> docker.errors.APIError:
    response = requests.Response()
    response.status_code = status
    return docker.errors.APIError(text, response=response, explanation=text)


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (docker.errors.NotFound("no such container"), NotFound),
        (api_error(409, "name in use"), Conflict),
        (api_error(400, "bad memory"), Rejected),
        (api_error(500, "engine broke"), Rejected),
        (docker.errors.DockerException("socket gone"), BackendUnavailable),
        (requests.exceptions.ConnectionError("refused"), BackendUnavailable),
        (ConnectionRefusedError("refused"), BackendUnavailable),
    ],
)
def test_sdk_errors_become_declserve_errors(
    raised: Exception, expected: type[DeclserveError]
) -> None:
    with pytest.raises(expected) as caught:
        with engine_errors("do a thing"):
            raise raised
    assert caught.value.__cause__ is raised
    assert "do a thing" in str(caught.value) and "\n" not in str(caught.value)
