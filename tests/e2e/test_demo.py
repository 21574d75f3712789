"""The README's main-job command: installs what is missing, applies examples/servings, shows status.

It runs the real script on the real engine (as project `demo`), checks that every running
serving answers on 127.0.0.1, that a second run changes nothing, and destroys the demo after.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.backends.docker.traffic import served_version

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "examples" / "servings"


def run_demo(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "scripts/demo.sh"], cwd=ROOT, capture_output=True, text=True,
                          timeout=1200, env=env, stdin=subprocess.DEVNULL)


def test_main_job_command_applies_the_examples_and_a_second_run_changes_nothing(
    tfs_double_image: str,
) -> None:
    env = {**os.environ, "DECLSERVE_IMAGE": tfs_double_image}  # so that nothing is ever pulled
    declserve = [str(ROOT / ".venv" / "bin" / "declserve")]
    try:
        first = run_demo(env)
        assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
        assert "examples/servings: valid" in first.stdout
        status = json.loads(
            subprocess.run(
                [*declserve, "status", "-C", str(DEMO), "--json"],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        rows = {r["name"]: r for r in status}
        assert set(rows) == {"mnist", "iris", "iris-v1", "mnist-batched"}
        assert rows["iris-v1"]["state"] == "stopped"
        for name in ("mnist", "iris", "mnist-batched"):
            assert rows[name]["state"] == "running" and rows[name]["endpoints"]
            for url in rows[name]["endpoints"]:
                assert served_version(url) == str(rows[name]["desiredVersion"])
        second = run_demo(env)
        assert second.returncode == 0 and second.stdout.count("No changes.") == 2, second.stdout[
            -2000:
        ]
    finally:
        subprocess.run(
            [*declserve, "destroy", "-C", str(DEMO), "--auto-approve"],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        # the demo's history store: a never-started container holding its volume
        subprocess.run(["docker", "rm", "-f", "declserve-records-demo"], capture_output=True)
        volumes = subprocess.run(
            ["docker", "volume", "ls", "-q", "--filter", "label=declserve.io/history=demo"],
            capture_output=True,
            text=True,
        ).stdout.split()
        if volumes:
            subprocess.run(["docker", "volume", "rm", "-f", *volumes], capture_output=True)
