"""Benchmark of `declserve plan`: on the real Docker engine at 50 servings, and the diff alone.

Run: `.venv/bin/python bench/plan.py` (needs a running Docker engine and the TensorFlow Serving
double image, which `scripts/setup.sh` builds). Every figure is printed with the ratio to its
floor, measured in the same run:

* plan, 50 servings: the `declserve plan` command (a fresh process, as a user runs it), against
  a floor process that lists and inspects the same containers with the docker SDK and does
  nothing else. Wall time (median of several runs) and peak resident memory of each.
* diff, 1,000 and 10,000 synthetic servings (two replicas each, one in ten changed): CPU time
  of `make_plan`, against a floor that only compares the same essences for equality.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from declserve.backends.docker.planner import DockerPlanner  # noqa: E402
from declserve.backends.docker.settings import DockerSettings  # noqa: E402
from declserve.live import HealthStatus, LiveResource, LiveState, flatten  # noqa: E402
from declserve.plan import DesiredResource, make_plan  # noqa: E402

RUNS = 5
SERVINGS = 50

FLOOR = """
import sys, docker
client = docker.from_env()
found = client.containers.list(all=True, filters={"label": "declserve.io/project=" + sys.argv[1]})
print(len(found))
"""


def _child_run(command: list[str]) -> tuple[float, int, str]:
    """Wall seconds, peak RSS (KiB) and stdout of one child process."""
    wrapper = (
        "import resource, subprocess, sys, time, json\n"
        "t = time.perf_counter()\n"
        "p = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "w = time.perf_counter() - t\n"
        "r = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
        "print(json.dumps([w, r, p.returncode, p.stdout[-2000:], p.stderr[-2000:]]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", wrapper, *command], capture_output=True, text=True, check=True
    )
    wall, rss, code, stdout, stderr = json.loads(out.stdout)
    if code not in (0, 2):
        raise SystemExit(f"{command[:4]} failed ({code}): {stderr}")
    return wall, rss, stdout


def _measure(command: list[str]) -> tuple[float, int, str]:
    results = [_child_run(command) for _ in range(RUNS)]
    return statistics.median(r[0] for r in results), max(r[1] for r in results), results[-1][2]


def _in_process(project: Path, name: str) -> tuple[float, float, float]:
    """The same work without interpreter start-up and imports, which the command pays once."""
    import docker

    from declserve.workflow import Workspace

    def plan_once() -> None:
        ws = Workspace.open(project)
        ws.plan(ws.observe())

    def plan_unprobed_once() -> None:
        ws = Workspace.open(project)
        ws.backend.served_versions = lambda *a, **k: None  # type: ignore[method-assign]
        ws.plan(ws.observe())

    def floor_once() -> None:
        docker.from_env().containers.list(
            all=True, filters={"label": f"declserve.io/project={name}"}
        )

    timings = []
    for fn in (plan_once, floor_once, plan_unprobed_once):
        fn()  # warm caches
        runs = []
        for _ in range(RUNS):
            start = time.perf_counter()
            fn()
            runs.append(time.perf_counter() - start)
        timings.append(statistics.median(runs))
    return timings[0], timings[1], timings[2]


def _image(script: str = "testinfra/tfserving-double/build.sh") -> str:
    """The image a build script made (its last line), built when missing."""
    return (
        subprocess.run(
            ["bash", str(ROOT / script)],
            capture_output=True,
            text=True,
            check=True,
        )
        .stdout.strip()
        .splitlines()[-1]
    )


def bench_engine() -> None:
    name = f"bench{os.getpid()}"
    base = Path(tempfile.mkdtemp(prefix="declserve-bench-"))
    project = base / "project"
    (project / "servings").mkdir(parents=True)
    shutil.copytree(ROOT / "examples/servings/registry", project / "registry")
    (project / "declserve.yaml").write_text(
        "apiVersion: declserve.io/v1\nkind: Project\n"
        f"metadata: {{name: {name}}}\n"
        "spec:\n  registry: registry\n  backend:\n    type: docker\n"
        f"    image: {_image()}\n    stateDir: {base / 'state'}\n"
        "    pullPolicy: never\n    pollSeconds: 1\n"
        f"    loggingProxyImage: {_image('scripts/build-logproxy-image.sh')}\n"
    )
    for i in range(SERVINGS):
        (project / "servings" / f"s{i}.yaml").write_text(
            "apiVersion: declserve.io/v1\nkind: Serving\n"
            f"metadata: {{name: s{i}}}\n"
            "spec:\n  model: {name: iris, version: 1}\n  resources: {cpu: 100m, memory: 64Mi}\n"
        )
    cli = [sys.executable, "-m", "declserve.cli"]
    try:
        print(f"setting up {SERVINGS} servings on the Docker engine ...", flush=True)
        subprocess.run(
            [*cli, "apply", "-C", str(project), "--auto-approve", "--no-color"],
            check=True,
            capture_output=True,
            cwd=ROOT,
        )
        plan_wall, plan_rss, plan_out = _measure(
            [*cli, "plan", "-C", str(project), "--detailed-exitcode", "--no-color"]
        )
        assert "No changes." in plan_out, plan_out
        floor_wall, floor_rss, floor_out = _measure([sys.executable, "-c", FLOOR, name])
        # a replica and a front proxy per serving, and the project's records container
        assert floor_out.strip() == str(2 * SERVINGS + 1), floor_out
        print(f"plan, {SERVINGS} servings, real engine (median of {RUNS} runs, whole process):")
        print(f"  plan   wall {plan_wall * 1000:8.0f} ms   peak RSS {plan_rss / 1024:6.1f} MiB")
        print(
            f"  floor  wall {floor_wall * 1000:8.0f} ms   peak RSS {floor_rss / 1024:6.1f} MiB"
            "   (docker SDK: list + inspect the same containers)"
        )
        print(
            f"  ratio  wall {plan_wall / floor_wall:8.2f} x    memory {plan_rss / floor_rss:5.2f} x"
        )
        warm_plan, warm_floor, warm_unprobed = _in_process(project, name)
        print(
            f"plan, {SERVINGS} servings, in one warm process (imports done; median of {RUNS} runs):"
        )
        print(
            f"  plan   {warm_plan * 1000:8.0f} ms   (load specs, read containers and servers, diff)"
        )
        print(
            f"  floor  {warm_floor * 1000:8.0f} ms   "
            "(docker SDK: list + inspect the same containers)"
        )
        print(f"  ratio  {warm_plan / warm_floor:8.2f} x")
        print(
            f"  plan without asking the {SERVINGS} servers for their versions: "
            f"{warm_unprobed * 1000:.0f} ms, "
            f"ratio {warm_unprobed / warm_floor:.2f} x (the servers here are the Python double)"
        )
    finally:
        ids = subprocess.run(
            ["docker", "ps", "-aq", "--filter", f"label=declserve.io/project={name}"],
            capture_output=True,
            text=True,
        ).stdout.split()
        if ids:
            subprocess.run(["docker", "rm", "-f", *ids], capture_output=True)
        volumes = subprocess.run(
            ["docker", "volume", "ls", "-q", "--filter", f"label=declserve.io/history={name}"],
            capture_output=True,
            text=True,
        ).stdout.split()
        if volumes:
            subprocess.run(["docker", "volume", "rm", "-f", *volumes], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def synthetic(n: int) -> tuple[list[DesiredResource], LiveState]:
    """n servings of two replicas as the Docker backend reads them; one in ten has a new
    version in its spec, one in ten a replica whose CPU limit was changed by hand."""
    desired, live = [], {}
    for i in range(n):
        replica = {"image": "tensorflow/serving:2.19.1", "modelSource": f"Models/m{i % 7}",
                   "resources": {"cpu": "1", "memory": "1Gi", "gpus": 0},
                   "batching": {"enabled": False}, "restartPolicy": "unless-stopped",
                   "args": ["--port=8500", "--rest_api_port=8501"], "labels": {"team": "t"}}
        essence = {"model": {"name": f"m{i % 7}", "version": 2}, "instances": 2,
                   "state": "running", "protected": False, **replica,
                   "frontend": {"image": "declserve/logproxy:x", "port": "chosen once"}}
        desired.append(DesiredResource("serving", f"s{i}", essence))
        have = json.loads(json.dumps(essence))
        if i % 10 == 0:
            have["model"]["version"] = 1
        members = []
        for k in range(2):
            flat = {**flatten(replica), "running": True}
            if i % 10 == 5 and k:
                flat["resources.cpu"] = "2"
                have["resources"]["cpu"] = f"mixed: 1 on s{i}-0; 2 on s{i}-1"
            members.append({"name": f"p-s{i}-{k}", "id": f"id{i}-{k}", "index": k,
                            "running": True, "status": "running", "essence": flat,
                            "problem": None})
        resource = LiveResource("serving", f"s{i}", have, HealthStatus.ready(),
                                detail={"replicas": members, "proxy": {
                                    "name": f"p-s{i}-proxy", "id": f"px{i}", "running": True,
                                    "upstreamsCurrent": True}})
        live[resource.address] = resource
    return desired, LiveState(live)


def bench_diff(n: int) -> None:
    desired, live = synthetic(n)
    planner = DockerPlanner(DockerSettings("p", "tensorflow/serving:2.19.1", "127.0.0.1",
                                           "unless-stopped", Path("/state"), 2, 60, "never"))
    start = time.process_time()
    plan = make_plan(project="p", backend="b", desired=desired, live=live,
                     planners={"serving": planner})
    cpu = time.process_time() - start
    assert len(plan.changes) == n // 5, len(plan.changes)
    start = time.process_time()
    equal = sum(d.essence == live.resources[d.address].essence for d in desired)
    floor = time.process_time() - start
    assert equal == n - n // 5
    print(
        f"diff, {n:>6} synthetic servings: make_plan {cpu * 1000:8.1f} ms CPU   "
        f"floor (equality only) {floor * 1000:6.1f} ms   ratio {cpu / max(floor, 1e-6):6.1f} x"
    )


def main() -> None:
    print(f"declserve plan benchmark, {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores")
    bench_diff(1_000)
    bench_diff(10_000)
    if "--diff-only" not in sys.argv:
        bench_engine()


if __name__ == "__main__":
    main()
