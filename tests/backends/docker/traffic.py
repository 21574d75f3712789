"""Requests to servings on 127.0.0.1, and a client that keeps sending them without pause."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from typing import Any


def predict(
    model_url: str, instances: list[Any] | None = None, timeout: float = 5.0
) -> dict[str, Any]:
    """POST :predict to `http://127.0.0.1:PORT/v1/models/NAME`; the answer as JSON."""
    assert model_url.startswith("http://127.0.0.1:"), model_url
    body = json.dumps({"instances": instances or [[1.0, 2.0, 3.0, 4.0]]}).encode()
    request = urllib.request.Request(
        f"{model_url}:predict", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=timeout) as resp:
        return json.loads(resp.read())


def served_version(model_url: str) -> str:
    return str(predict(model_url)["model_version"])


@dataclass
class SteadyClient:
    """Sends :predict to every endpoint in turn, without pause, until stopped; counts failures."""

    endpoints: list[str]
    ok: int = 0
    failures: list[str] = field(default_factory=list)
    versions: set[str] = field(default_factory=set)
    outcomes: list[tuple[float, bool]] = field(default_factory=list)  # (sent at, answered)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _loop(self) -> None:
        i = 0
        while not self._stop.is_set():
            url = self.endpoints[i % len(self.endpoints)]
            i += 1
            sent = time.monotonic()
            try:
                self.versions.add(served_version(url))
                self.ok += 1
                self.outcomes.append((sent, True))
            except Exception as exc:  # every failure is counted and reported
                self.failures.append(f"{url}: {exc!r}")
                self.outcomes.append((sent, False))

    def __enter__(self) -> SteadyClient:
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(timeout=30)


def gap_ms(outcomes: list[tuple[float, bool]]) -> float:
    """How long the address did not answer: from the first failed request's sending to the
    sending of the first request answered after the last failure; 0 without failures."""
    failed = [i for i, (_, ok) in enumerate(outcomes) if not ok]
    if not failed:
        return 0.0
    after = next((t for t, ok in outcomes[failed[-1] + 1 :] if ok), outcomes[failed[-1]][0])
    return (after - outcomes[failed[0]][0]) * 1000
