"""examples/kserve's servings, applied on the real cluster with KServe's real controller.

The project around them is the test's (a fresh namespace, the registry as a claim over the
project's copy, the TensorFlow Serving double, the test broker); the servings and the
transformer script are the example's, with smaller CPU and memory (one 2-core node for every
test). Then ten apply-then-plan cycles stay empty with KServe's webhook and controller running.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from tests.backends.docker.traffic import predict, served_version
from tests.backends.kserve.project import KServeProject
from tests.backends.kserve.test_kserve import artifacts, front

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "examples" / "kserve"
SCRIPT = ROOT / "examples" / "servings" / "registry" / "Resources" / "scale.py"
CYCLES = 10


def test_the_example_applies_answers_and_stays_converged(
    make_kserve_project: Callable[..., KServeProject], cluster_kafka: Any,
) -> None:
    project = make_kserve_project(kafka=cluster_kafka.bootstrap,
                                  pods_kafka=cluster_kafka.pods_bootstrap)
    servings = project.root / "servings"
    servings.mkdir(exist_ok=True)
    names = []
    for path in sorted((EXAMPLE / "servings").glob("*.yaml")):
        doc = yaml.safe_load(path.read_text())
        doc["spec"]["resources"] = {"cpu": "100m", "memory": "128Mi"}
        names.append(doc["metadata"]["name"])
        (servings / path.name).write_text(yaml.safe_dump(doc, sort_keys=False))
    (project.root / "registry" / "Resources").mkdir(exist_ok=True)
    shutil.copy(SCRIPT, project.root / "registry" / "Resources" / "scale.py")
    assert sorted(names) == ["iris-predictions", "mnist-model-only", "mnist-transformed"]

    project.apply()
    assert artifacts(project, 2) == ["0", "1"]  # mnist 2: MODEL-ONLY, and the transformer's
    for name in names:
        conditions = {c["type"]: c["status"]
                      for c in project.inference_service(name)["status"]["conditions"]}
        assert conditions["Ready"] == "True", (name, conditions)
    assert served_version(front(project, "mnist-model-only")) == "2"
    assert served_version(front(project, "iris-predictions")) == "2"
    answer = predict(front(project, "mnist-transformed", "transformer"), [[1.0, 2.0, 3.0, 4.0]])
    assert answer["transformedBy"] == "scale x2"
    assert project.detailed_exitcode() == 0
    for _ in range(CYCLES):
        out = project.apply().stdout
        assert "No changes" in out, out
        assert project.detailed_exitcode() == 0
