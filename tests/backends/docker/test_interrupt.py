"""Ctrl-C during apply, as Terraform does it: the first stops gracefully, the second at once."""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import threading
import time
from typing import IO

from tests.backends.docker.project import TestProject


class Lines:
    """The lines a process writes to one stream, readable with a deadline."""

    def __init__(self, stream: IO[str]) -> None:
        self.seen: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self._queue.put(line)

    def wait_for(self, text: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.seen):
            left = deadline - time.monotonic()
            assert left > 0, f"{text!r} never appeared in {self.seen}"
            try:
                self.seen.append(self._queue.get(timeout=left))
            except queue.Empty:
                pass

    def rest(self) -> str:
        while not self._queue.empty():
            self.seen.append(self._queue.get())
        return "".join(self.seen)


def start_apply(project: TestProject) -> tuple[subprocess.Popen[str], Lines, Lines]:
    proc = subprocess.Popen(
        project.command("apply", "--auto-approve", "--parallelism", "1", "--no-color"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    return proc, Lines(proc.stdout), Lines(proc.stderr)


def test_first_ctrl_c_finishes_the_running_step_starts_nothing_and_records_it(make_project) -> None:
    project: TestProject = make_project()
    for name in ("a", "b", "c"):
        project.serving(name, instances=2)
    proc, out, err = start_apply(project)
    out.wait_for("serving.a: create started")
    proc.send_signal(signal.SIGINT)
    err.wait_for("Interrupt received")  # said at once, while the step still runs
    assert proc.wait(timeout=180) == 130
    report = err.rest()
    assert "Apply interrupted" in report and "not started create  serving.c" in report
    assert project.containers("b") == [] and project.containers("c") == []
    (entry,) = json.loads(project.ok("history", "--json").stdout)
    assert entry["outcome"] == "interrupted"
    assert {c["address"]: c["status"] for c in entry["changes"]}["serving.c"] == "not started"
    project.apply()  # a second apply does the rest
    assert project.detailed_exitcode() == 0


def test_second_ctrl_c_exits_at_once(make_project) -> None:
    project: TestProject = make_project()
    project.serving("a", instances=3)
    proc, out, err = start_apply(project)
    out.wait_for("serving.a: create started")
    proc.send_signal(signal.SIGINT)
    err.wait_for("Interrupt received")
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 130
    err.wait_for("Two interrupts received")
