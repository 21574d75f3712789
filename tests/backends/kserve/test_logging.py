"""Inference logging of `tool: kserve` servings: KServe's logger (its agent sidecar, built from
the same Go module as the controller) posts CloudEvents to declserve's logging sink, which
produces the same records, on the same topics, as the other tools' logging proxy."""

from __future__ import annotations

import json
import urllib.request
import uuid
from collections.abc import Callable
from typing import Any

import jsonschema

from tests.backends.docker.project import resource_change, steps
from tests.backends.kserve.project import KServeProject
from tests.backends.kserve.test_kserve import front
from tests.backends.kubernetes.test_logging import RECORD_SCHEMA, Topic

N = 10
MODES = {"la": "all", "lm": "model-inputs", "lp": "predictions"}


def predict(url: str, request_id: str, row: list[float]) -> dict[str, Any]:
    """KServe's agent takes a request's Ce-Id header as the CloudEvent's id (else a new
    UUID): the records' requestId and key."""
    assert url.startswith("http://127.0.0.1:"), url
    request = urllib.request.Request(
        f"{url}:predict", data=json.dumps({"instances": [row]}).encode(),
        headers={"Content-Type": "application/json", "Ce-Id": request_id})
    with urllib.request.urlopen(request, timeout=10) as resp:
        return dict(json.loads(resp.read()))


def test_each_logging_mode_puts_exactly_its_fields_into_the_records(
    make_kserve_project: Callable[..., KServeProject], cluster_kafka: Any,
) -> None:
    project = make_kserve_project(kafka=cluster_kafka.bootstrap,
                                  pods_kafka=cluster_kafka.pods_bootstrap)
    for name, mode in MODES.items():
        project.serving(name, inferenceLogging={"topic": "create", "mode": mode})
    plan = project.plan()
    for name in MODES:
        assert resource_change(plan, f"serving.{name}")["action"] == "create"
        assert steps(plan, f"serving.{name}")[0] == ("apply", "logging sink")
    project.apply()
    logger = {n: project.inference_service(n)["spec"]["predictor"]["logger"] for n in MODES}
    assert {n: lg["mode"] for n, lg in logger.items()} == {
        "la": "all", "lm": "request", "lp": "response"}

    for name, mode in MODES.items():
        topic = f"{project.name}-{name}-inference"
        url = front(project, name)
        reader = Topic(cluster_kafka, topic)
        try:
            sent = {}
            for i in range(N):
                rid = f"{name}-{i}-{uuid.uuid4().hex[:8]}"
                row = [float(i), 0.5, 0.25, 1.0]
                sent[rid] = (row, predict(url, rid, row))
            records = reader.read_until(N, timeout=60)
        finally:
            reader.close()
        # front() asked the serving once or more before (no Ce-Id: a UUID each)
        mine = [r for r in records if r["_key"] in sent]
        assert sorted(r["_key"] for r in mine) == sorted(sent), (mode, len(records))
        assert len(records) - len(mine) <= 5, (mode, [r["_key"] for r in records])
        for r in mine:
            row, answer = sent[r.pop("_key")]
            r.pop("_seen")
            jsonschema.validate(r, RECORD_SCHEMA)
            assert (r["serving"], r["model"], r["mode"]) == (name, "mnist", mode)
            assert ("inputs" in r) == (mode != "predictions"), r
            assert ("predictions" in r) == (mode != "model-inputs"), r
            if "inputs" in r:
                assert r["inputs"] == [row]
            if "predictions" in r:
                assert r["predictions"] == answer["predictions"]
                assert r["statusCode"] == 200
    assert project.detailed_exitcode() == 0
