"""The project lock: durations, waiting (and saying so once), and what the lock error says.

`LockDouble` is an in-memory stand-in for a backend's lock object; it is held by another run
for a given number of attempts and then free.
"""

from __future__ import annotations

import pytest

from declserve.lock import LockHeld, LockInfo, format_duration, parse_duration, project_lock

OTHER = LockInfo(
    "other-id", "apply", "ana", "ci-7", 4242, "declserve apply", "2026-01-01T00:00:00+00:00"
)


class LockDouble:
    def __init__(self, busy_attempts: int) -> None:
        self.busy = busy_attempts
        self.attempts = 0
        self.held: LockInfo | None = None
        self.unlocked: list[str] = []

    def try_lock(self, info: LockInfo) -> LockInfo | None:
        self.attempts += 1
        if self.attempts <= self.busy:
            return OTHER
        self.held = info
        return None

    def unlock(self, lock_id: str) -> bool:
        self.unlocked.append(lock_id)
        return True

    def read_lock(self) -> LockInfo | None:
        return self.held


@pytest.mark.parametrize(
    "text, seconds",
    [
        ("1h30m", 5400),
        ("90s", 90),
        ("1.5m", 90),
        ("30", 30),
        ("0", 0),
        ("0s", 0),
        ("500ms", 0.5),
        ("2h", 7200),
        ("1m30s", 90),
        (".5s", 0.5),
        ("24h", 86400),
        (" 5m ", 300),
    ],
)
def test_durations_as_terraform_and_go_spell_them(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["1h30", "5 m", "m", "-5s", "nan", "inf", "1e3", "1d", "", "25h"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="duration|between 0s and 24h"):
        parse_duration(text)


@pytest.mark.parametrize(
    "seconds, text", [(5400, "1h30m"), (90, "1m30s"), (0, "0s"), (0.5, "0.5s")]
)
def test_durations_are_printed_as_they_are_typed(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text and parse_duration(text) == seconds


def test_a_waiting_run_says_so_once_then_takes_the_lock() -> None:
    backend = LockDouble(busy_attempts=3)
    said: list[tuple[LockInfo, float]] = []

    def note(holder: LockInfo, timeout: float) -> None:
        said.append((holder, timeout))

    with project_lock(backend, "apply", 60, on_wait=note, poll=0) as mine:
        assert backend.held == mine
    assert said == [(OTHER, 60)] and backend.attempts == 4 and backend.unlocked == [mine.id]


def test_the_default_wait_notice_goes_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    with project_lock(LockDouble(busy_attempts=1), "apply", 5400, poll=0):
        pass
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (
        "declserve: the project is locked; waiting up to 1h30m for lock other-id held "
        "by ana@ci-7 (pid 4242, apply) since 2026-01-01T00:00:00+00:00: "
        "declserve apply\n"
    )


def test_without_a_timeout_the_lock_error_comes_at_once_and_nothing_waits() -> None:
    backend = LockDouble(busy_attempts=10)
    said: list[object] = []
    with pytest.raises(LockHeld) as err:
        with project_lock(backend, "apply", 0, on_wait=lambda h, t: said.append(h), poll=0):
            pytest.fail("the lock was taken")
    assert said == [] and backend.attempts == 1 and backend.unlocked == []
    assert str(err.value).startswith("the project is locked: lock other-id held by ana@ci-7")


def test_the_lock_error_after_waiting_says_how_long() -> None:
    with pytest.raises(LockHeld) as err:
        with project_lock(
            LockDouble(busy_attempts=10**9), "apply", 0.001, on_wait=lambda h, t: None, poll=0.001
        ):
            pass
    assert str(err.value).startswith("the project is locked after waiting 0")


def test_the_lock_error_hint_names_both_ways_out() -> None:
    hint = LockHeld(OTHER).hint("declserve force-unlock other-id")
    assert "--lock-timeout" in hint and hint.endswith("declserve force-unlock other-id")
