"""`tool: kserve` servings end to end: declserve's InferenceServices on the real cluster with
KServe's real controller (Standard mode), pods that answer on 127.0.0.1, artifacts in the
registry, drift made with kubectl, and a version bump under load."""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Callable

import pytest

from tests.backends.docker.project import changes, field, resource_change, steps
from tests.backends.docker.traffic import SteadyClient, predict, served_version
from tests.backends.kserve.project import KServeProject
from tests.fixtures.polling import wait_until

CYCLES = 10


def artifacts(project: KServeProject, version: int = 1) -> list[str]:
    where = project.root / "registry" / "Models" / "mnist" / str(version) / "Artifacts"
    return sorted(p.name for p in where.iterdir()) if where.is_dir() else []


def pinned(project: KServeProject, name: str) -> set[str]:
    """The versions the serving's predictor pods (not being deleted) were made for."""
    return {e["value"] for p in project.pods(name)
            if p["metadata"]["labels"].get("component") == "predictor"
            for c in p["spec"]["containers"] for e in c.get("env") or ()
            if e["name"] == "DECLSERVE_MODEL_VERSION"}


def front(project: KServeProject, name: str, component: str = "predictor") -> str:
    """A NodePort Service the test makes over the serving's predictor (or transformer) pods
    (KServe's own Services are ClusterIP): the model's URL on 127.0.0.1, through kube-proxy."""
    service = f"{name}-test-{component}"
    # the port KServe's own Service targets: its agent's when the predictor logs or batches
    kserves = json.loads(project.kubectl("get", "service", f"{name}-{component}", "-o",
                                         "json").stdout)
    target = kserves["spec"]["ports"][0]["targetPort"]
    project.kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": service},
        "spec": {"type": "NodePort",
                 "selector": {"serving.kserve.io/inferenceservice": name,
                              "component": component},
                 "ports": [{"port": 8080, "targetPort": target}]}}))
    port = json.loads(project.kubectl("get", "service", service, "-o", "json").stdout)[
        "spec"]["ports"][0]["nodePort"]
    url = f"http://127.0.0.1:{port}/v1/models/{name}"
    wait_until(lambda: served_version(url), timeout=60, message=f"{url} to answer")
    return url


def test_model_only_servings_share_artifact_0_answer_and_stay_converged(
    make_kserve_project: Callable[..., KServeProject],
) -> None:
    project = make_kserve_project()
    project.serving("a")
    project.serving("b", instances=2, maxInstances=3)
    plan = project.plan()
    for name in ("a", "b"):
        assert resource_change(plan, f"serving.{name}")["action"] == "create"
        assert steps(plan, f"serving.{name}") == [
            ("write artifact", "MODEL-ONLY"), ("apply", f"InferenceService {name}"),
            ("wait until ready:", f"InferenceService {name}")]
    assert artifacts(project) == []  # plan writes nothing

    project.apply()
    assert artifacts(project) == ["0"]
    for name in ("a", "b"):
        isvc = project.inference_service(name)
        assert isvc["spec"]["predictor"]["model"]["storageUri"] == \
            "pvc://models/Models/mnist/1/Artifacts/0"
        # what KServe's webhook and controller added is there, and is no change
        assert isvc["metadata"]["annotations"]["modelFormat"] == "tensorflow"
        assert "inferenceservice.finalizers" in isvc["metadata"]["finalizers"]
        conditions = {c["type"]: c["status"] for c in isvc["status"]["conditions"]}
        assert conditions["Ready"] == "True", conditions
        assert served_version(front(project, name)) == "1"
    ready = {n: len([p for p in project.pods(n)
                     if p["metadata"]["labels"].get("component") == "predictor"])
             for n in ("a", "b")}
    assert ready == {"a": 1, "b": 2}
    assert project.detailed_exitcode() == 0
    for _ in range(CYCLES):
        out = project.apply().stdout
        assert "No changes" in out, out
        assert project.detailed_exitcode() == 0
    status = project.status()
    inner = f"http://a-predictor.{project.namespace}.svc.cluster.local/v1/models/a"
    assert (status["a"]["endpoints"], status["a"]["configuredVersion"]) == ([inner], 1)
    assert status["b"]["instancesReady"] == 2 and status["b"]["health"] == "ready"


def test_scale_to_zero_in_standard_mode_is_refused_with_its_place_and_nothing_is_made(
    make_kserve_project: Callable[..., KServeProject],
) -> None:
    project = make_kserve_project()
    project.serving("z", instances=0)
    run = project.run("plan", "--no-color")
    assert run.returncode == 1
    (line,) = [x for x in run.stderr.splitlines() if "spec.instances" in x]
    assert "servings/z.yaml:12:14: spec.instances: 0 (scale to zero) needs KServe's Knative " \
        "mode" in line, line
    assert json.loads(project.kubectl("get", "inferenceservices", "-o", "json").stdout)[
        "items"] == []


def test_an_edit_with_kubectl_is_drift_that_names_kubectl_and_apply_takes_it_back(
    make_kserve_project: Callable[..., KServeProject],
) -> None:
    project = make_kserve_project()
    project.serving("e")
    project.apply()
    editor = f"{shlex.quote(sys.executable)} -c " + shlex.quote(
        "import sys, re; p = sys.argv[1]; t = open(p).read(); "
        "open(p, 'w').write(re.sub(r'maxReplicas: 1\\b', 'maxReplicas: 3', t, count=1))")
    edit = project.cluster.kubectl("-n", project.namespace, "edit", "inferenceservice", "e",
                                   editor=editor)
    assert "edited" in edit.stdout, edit.stdout + edit.stderr
    assert project.detailed_exitcode() == 2
    plan = project.plan()
    (change,) = resource_change(plan, "serving.e")["changes"]
    assert (change["path"], change["before"], change["after"]) == ("maxInstances", 3, 1)
    assert change["changed_by"].startswith("kubectl-edit at "), change

    project.apply()
    assert project.inference_service("e")["spec"]["predictor"]["maxReplicas"] == 1
    assert project.detailed_exitcode() == 0


def test_a_version_bump_under_load_drops_nothing_and_shows_its_new_artifact(
    make_kserve_project: Callable[..., KServeProject], capsys: pytest.CaptureFixture[str],
) -> None:
    project = make_kserve_project()
    project.serving("v", version=1)
    project.apply()
    url = front(project, "v")

    project.serving("v", version=2)
    plan = project.plan()
    got = changes(plan, "serving.v")
    assert field("model.version", 1, 2) in got
    assert field("artifact", "MODEL-ONLY", "MODEL-ONLY (new)") in got  # version 2's artifact 0
    assert steps(plan, "serving.v")[0] == ("write artifact", "MODEL-ONLY")
    with SteadyClient([url]) as during:
        project.apply()
        wait_until(lambda: pinned(project, "v") == {"2"}, timeout=120,
                   message=lambda: f"only version 2 pods: {pinned(project, 'v')}")
    assert during.failures == [], during.failures[:5]
    assert during.ok > 0 and during.versions == {"1", "2"}
    assert artifacts(project, 2) == ["0"]
    assert project.detailed_exitcode() == 0
    with capsys.disabled():
        print(f"\n[kserve] version bump 1→2 through the predictor pods: {during.ok} requests, "
              f"{len(during.failures)} failed")



SCRIPT = """\"\"\"A transformer: scales every input before the predictor, marks the answer.\"\"\"
import argparse

import kserve
from kserve import model_server

FACTOR = {factor}


class Scale(kserve.Model):
    def __init__(self, name):
        super().__init__(name)
        self.ready = True

    def preprocess(self, payload, headers=None):
        return {{"instances": [[FACTOR * x for x in row] for row in payload["instances"]]}}

    def postprocess(self, response, headers=None):
        response["transformedBy"] = f"scale x{{FACTOR}}"
        return response


if __name__ == "__main__":
    args, _ = argparse.ArgumentParser(parents=[model_server.parser]).parse_known_args()
    kserve.ModelServer().start([Scale(args.model_name)])
"""


def test_a_transformer_processes_requests_and_each_script_gets_its_own_artifact(
    make_kserve_project: Callable[..., KServeProject],
) -> None:
    project = make_kserve_project()
    script = project.root / "registry" / "Resources" / "scale.py"
    script.parent.mkdir(exist_ok=True)
    script.write_text(SCRIPT.format(factor=2))
    project.serving("p")
    project.serving("t")
    project.apply()
    assert artifacts(project) == ["0"]  # two MODEL-ONLY servings, one artifact

    transformer = {"script": "Resources/scale.py",
                   "resources": {"cpu": "500m", "memory": "512Mi"}}
    project.serving("t", transformer=transformer)
    plan = project.plan()
    assert field("artifact", "MODEL-ONLY", "1 (new)") in changes(plan, "serving.t")
    assert steps(plan, "serving.t")[0] == ("write artifact", "1")
    assert [rc["address"] for rc in plan["resource_changes"]] == ["serving.t"]
    assert artifacts(project) == ["0"]
    project.apply()
    assert artifacts(project) == ["0", "1"]
    assert project.inference_service("p")["spec"]["predictor"]["model"]["storageUri"].endswith(
        "/Artifacts/0")
    assert project.inference_service("t")["spec"]["predictor"]["model"]["storageUri"].endswith(
        "/Artifacts/1")
    row = [1.0, 2.0, 3.0, 4.0]
    direct = predict(front(project, "t"), [[2 * x for x in row]])
    through = predict(front(project, "t", "transformer"), [row])
    assert through["predictions"] == direct["predictions"]
    assert through["transformedBy"] == "scale x2"
    assert project.detailed_exitcode() == 0

    script.write_text(SCRIPT.format(factor=3))
    plan = project.plan()
    assert field("artifact", "1", "2 (new)") in changes(plan, "serving.t")
    project.apply()
    assert artifacts(project) == ["0", "1", "2"]
    url = front(project, "t", "transformer")
    wait_until(lambda: predict(url, [row]).get("transformedBy") == "scale x3", timeout=120,
               message="the new script to answer")
    assert project.detailed_exitcode() == 0


def test_protection_survives_prune_until_lifted(
    make_kserve_project: Callable[..., KServeProject],
) -> None:
    project = make_kserve_project()
    project.serving("kept", protected=True)
    project.apply()
    project.remove_serving("kept")
    project.serving("other")
    project.apply("--prune")
    assert project.inference_service("kept")["metadata"]["annotations"][
        "declserve.io/protected"] == "true"
    project.ok("unprotect", "kept")
    project.apply("--prune")
    wait_until(lambda: "NotFound" in project.kubectl(
        "get", "inferenceservice", "kept", check=False).stderr, timeout=60,
        message="InferenceService kept deleted by --prune once unprotected")
