"""Writes the golden plan folders' inputs: `desired/` (a project) and `observed.json` (live state).

Run once when adding a case (`python -m tests.unit.golden.make_cases`); the expected plans,
`plan.txt` and `plan.json`, are written by the golden test itself with UPDATE_GOLDEN=1 and
then read and checked by a person before they are committed. The live state of each case is
what the Docker backend observes of servings declserve made from an earlier spec, edited the
way a hand change, a failure or another run would leave it.
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import yaml

from declserve.backends.docker.essence import desired_essence, desired_replica
from declserve.backends.docker.settings import DockerSettings
from declserve.desired import DesiredServing, ModelSource, topic_of
from declserve.spec import Project, Serving

HERE = Path(__file__).resolve().parent
REGISTRY = "../../../../data/registry"  # from tests/unit/golden/<case>/desired/
IMAGE = "tensorflow/serving:2.19.1"


def project_doc(kafka: bool = False, image: str = IMAGE) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "apiVersion": "declserve.io/v1",
        "kind": "Project",
        "metadata": {"name": "gold"},
        "spec": {
            "registry": REGISTRY,
            "backend": {"type": "docker", "image": image, "stateDir": "/var/lib/declserve"},
        },
    }
    if kafka:
        doc["spec"]["kafka"] = {"bootstrapServers": ["127.0.0.1:9092"], "partitions": 2}
    return doc


def serving(name: str, model: str = "mnist", version: int | str = 2, **spec: Any) -> dict[str, Any]:
    body = {
        "model": {"name": model, "version": version},
        "resources": {"cpu": "500m", "memory": "256Mi"},
        **spec,
    }
    return {
        "apiVersion": "declserve.io/v1",
        "kind": "Serving",
        "metadata": {"name": name, "labels": {"team": "gold"}},
        "spec": body,
    }


def settings(project: dict[str, Any]) -> DockerSettings:
    return DockerSettings.from_project(Project.model_validate(project))


def made(
    project: dict[str, Any],
    doc: dict[str, Any],
    *,
    version: int | None = None,
    edit: dict[str, Any] | None = None,
    replica_edits: dict[int, dict[str, Any]] | None = None,
    health: tuple[str, str] = ("ready", ""),
    proxy: dict[str, Any] | None = None,
    protected: bool = False,
) -> dict[str, Any]:
    """The live serving the Docker backend reads back after declserve applied `doc`."""
    p = Project.model_validate(project)
    s = Serving.model_validate(doc)
    model = s.spec.model
    pinned = version or (model.version if isinstance(model.version, int) else 3)
    topic, creates = topic_of(p, s)
    d = DesiredServing(s, ModelSource(model.name, pinned), "x.yaml:1", topic, creates)
    cfg = settings(project)
    essence = desired_essence(d, cfg)
    for path, value in (edit or {}).items():
        node = essence
        *parents, last = path.split(".")
        for part in parents:
            node = node[part]
        node[last] = value
    replicas = []
    for i in range(s.spec.instances):
        name = cfg.container_name(s.name, i)
        r = {
            "name": name,
            "id": f"c0ffee{i:02d}{s.name}",
            "index": i,
            "running": s.spec.state.value == "running",
            "status": "running",
            "essence": desired_replica(d, cfg),
            "problem": None,
            "endpoint": f"http://127.0.0.1:{32768 + i}",
            "servedVersions": [pinned],
        }
        r.update(copy.deepcopy((replica_edits or {}).get(i, {})))
        replicas.append(r)
    if proxy is None:
        proxy = {
            "name": cfg.proxy_name(s.name),
            "id": f"beef{s.name}",
            "running": True,
            "upstreamsCurrent": True,
        }
    return {
        "kind": "serving",
        "name": s.name,
        "essence": essence,
        "health": {"state": health[0], "reason": health[1]},
        "observed": {
            "endpoints": [r["endpoint"] for r in replicas],
            "servedVersions": [pinned],
            "ready": len(replicas),
            "members": [],
        },
        "detail": {"replicas": replicas, "proxy": proxy},
        "managed": True,
        "protected": protected or s.spec.protected,
        "revision": ",".join(r["id"] for r in replicas),
    }


def topic(
    name: str, partitions: int = 2, managed: bool = True, retention: int = 604800000
) -> dict[str, Any]:
    return {
        "kind": "topic",
        "name": name,
        "managed": managed,
        "essence": {"partitions": partitions, "replicationFactor": 1, "retentionMs": retention,
                    "maxMessageBytes": 2 * 2**20},
    }


def cases() -> dict[str, dict[str, Any]]:
    p, pk = project_doc(), project_doc(kafka=True)
    m = serving("mnist", instances=2)
    logged = serving("mnist", instances=2, inferenceLogging={"topic": "create"})
    batched = serving("mnist", batching={"enabled": True, "maxBatchSize": 8})
    stopped = serving("mnist", instances=2, state="stopped")
    tname = "gold-mnist-inference"
    return {
        "create-one": {"project": p, "specs": [m], "live": []},
        "no-changes": {"project": p, "specs": [m], "live": [made(p, m)]},
        "version-bump": {
            "project": p,
            "specs": [m],
            "live": [made(p, serving("mnist", version=1, instances=2))],
        },
        "latest-is-pinned": {
            "project": p,
            "specs": [serving("mnist", version="latest", instances=2)],
            "live": [made(p, m)],
        },
        "scale-up": {"project": p, "specs": [serving("mnist", instances=3)], "live": [made(p, m)]},
        "scale-down": {
            "project": p,
            "specs": [serving("mnist", instances=1)],
            "live": [made(p, m)],
        },
        "limits-in-place": {
            "project": p,
            "specs": [serving("mnist", instances=2, resources={"cpu": 1, "memory": "1Gi"})],
            "live": [made(p, m)],
        },
        "image-rolling-recreate": {
            "project": project_doc(image="tensorflow/serving:2.20.0"),
            "specs": [m],
            "live": [made(p, m)],
        },
        "batching-on": {"project": p, "specs": [batched], "live": [made(p, serving("mnist"))]},
        "batching-parameters-restart": {
            "project": p,
            "specs": [serving("mnist", batching={"enabled": True, "maxBatchSize": 16})],
            "live": [made(p, batched)],
        },
        "stop": {"project": p, "specs": [stopped], "live": [made(p, m)]},
        "start": {"project": p, "specs": [m], "live": [made(p, stopped)]},
        "one-replica-stopped-by-hand": {
            "project": p,
            "specs": [m],
            "live": [
                made(
                    p,
                    m,
                    edit={"state": "mixed: stopped on gold-mnist-1; running on gold-mnist-0"},
                    replica_edits={
                        1: {
                            "running": False,
                            "status": "exited",
                            "essence": {**desired_replica_of(p, m), "running": False},
                        }
                    },
                )
            ],
        },
        "model-change-replaces": {
            "project": p,
            "specs": [serving("mnist", model="iris", version=1, instances=2)],
            "live": [made(p, m)],
        },
        "removed-spec-kept-without-prune": {
            "project": p,
            "specs": [serving("iris", model="iris")],
            "live": [made(p, m), made(p, serving("iris", model="iris"))],
        },
        "prune-deletes": {
            "project": p,
            "specs": [serving("iris", model="iris")],
            "live": [made(p, m), made(p, serving("iris", model="iris"))],
            "options": {"guards": ["--prune"]},
        },
        "prune-everything-refused": {
            "project": p,
            "specs": [],
            "live": [made(p, m)],
            "options": {"guards": ["--prune"]},
        },
        "destroy": {"project": p, "specs": [], "live": [made(p, m)], "options": {"destroy": True}},
        "protected-is-kept": {
            "project": p,
            "specs": [],
            "live": [made(p, m, protected=True)],
            "options": {"destroy": True},
        },
        "labels-removed": {
            "project": p,
            "specs": [{**m, "metadata": {"name": "mnist"}}],
            "live": [made(p, m)],
        },
        "extra-replica-by-hand": {
            "project": p,
            "specs": [m],
            "live": [extra_replica(made(p, m, edit={"instances": 3}))],
        },
        "degraded-replica-repair": {
            "project": p,
            "specs": [m],
            "live": [
                made(
                    p,
                    m,
                    health=("degraded", "gold-mnist-1 is paused"),
                    replica_edits={1: {"problem": "gold-mnist-1 is paused", "status": "paused"}},
                )
            ],
        },
        "progressing-warning": {
            "project": p,
            "specs": [m],
            "live": [made(p, m, health=("progressing", "rolling out"))],
        },
        "foreign-container-in-the-way": {
            "project": p,
            "specs": [m],
            "live": [],
            "blockers": [
                {
                    "object_name": "gold-mnist-0",
                    "resource": "serving.mnist",
                    "reason": "not managed by declserve",
                }
            ],
        },
        "topic-created-first": {"project": pk, "specs": [logged], "live": []},
        "topic-deleted-by-hand": {"project": pk, "specs": [logged], "live": [made(pk, logged)]},
        "topic-partitions-grow": {
            "project": pk,
            "specs": [logged],
            "live": [made(pk, logged), topic(tname, partitions=1)],
        },
        "topic-partitions-cannot-shrink": {
            "project": pk,
            "specs": [logged],
            "live": [made(pk, logged), topic(tname, partitions=4)],
        },
        "unused-topic-kept": {
            "project": pk,
            "specs": [m],
            "live": [made(pk, m), topic(tname), topic("other-team", managed=False)],
        },
        "unused-topic-deleted-with-flag": {
            "project": pk,
            "specs": [m],
            "live": [made(pk, m), topic(tname)],
            "options": {"guards": ["--delete-topics"]},
        },
        "logging-mode-change": {
            "project": pk,
            "specs": [
                serving(
                    "mnist",
                    instances=2,
                    inferenceLogging={"topic": "create", "mode": "predictions"},
                )
            ],
            "live": [made(pk, logged), topic(tname)],
        },
        "target-takes-its-topic": {
            "project": pk,
            "specs": [logged, serving("iris", model="iris", version=1)],
            "live": [
                made(pk, logged),
                made(pk, serving("iris", model="iris", version=1), version=2),
            ],
            "options": {"targets": ["mnist"]},
        },
    }


def desired_replica_of(project: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
    s = Serving.model_validate(doc)
    d = DesiredServing(s, ModelSource(s.spec.model.name, 2), "x.yaml:1")
    return desired_replica(d, settings(project))


def extra_replica(live: dict[str, Any]) -> dict[str, Any]:
    first = live["detail"]["replicas"][0]
    live["detail"]["replicas"].append(
        {**copy.deepcopy(first), "name": "gold-mnist-handmade", "id": "handmade", "index": None}
    )
    return live


def write(name: str, case: dict[str, Any]) -> None:
    folder = HERE / name
    shutil.rmtree(folder / "desired", ignore_errors=True)
    (folder / "desired" / "servings").mkdir(parents=True)
    (folder / "desired" / "declserve.yaml").write_text(
        yaml.safe_dump(case["project"], sort_keys=False)
    )
    for doc in case["specs"]:
        path = folder / "desired" / "servings" / f"{doc['metadata']['name']}.yaml"
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
    observed = {"resources": case["live"], "blockers": case.get("blockers", [])}
    (folder / "observed.json").write_text(json.dumps(observed, indent=2, sort_keys=True) + "\n")
    (folder / "options.json").write_text(json.dumps(case.get("options", {}), indent=2) + "\n")


if __name__ == "__main__":
    for case_name, case_body in cases().items():
        write(case_name, case_body)
    print(
        f"wrote {len(cases())} cases; "
        "now run UPDATE_GOLDEN=1 pytest tests/unit/test_golden_plans.py"
    )
