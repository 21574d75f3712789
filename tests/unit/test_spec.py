"""Spec rules of one document: defaults, quantities, cross-field rules, strictness."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from declserve.spec import Project, Resources, Serving, parse_cpu, parse_memory


def serving(**spec: Any) -> dict[str, Any]:
    body = {"model": {"name": "mnist", "version": 1}, **spec}
    return {
        "apiVersion": "declserve.io/v1",
        "kind": "Serving",
        "metadata": {"name": "m"},
        "spec": body,
    }


def test_defaults_follow_the_reference_page() -> None:
    s = Serving.model_validate(serving()).spec
    assert (s.tool.value, s.state.value, s.instances, s.server) == (
        "default",
        "running",
        1,
        "tensorflow-serving",
    )
    assert s.batching.enabled is False and s.inference_logging is None and s.transformer is None
    assert (s.resources.cpu, s.resources.memory, s.resources.gpus) == ("1", "1Gi", 0)


def test_logging_block_defaults_to_a_created_topic_logging_everything() -> None:
    s = Serving.model_validate(serving(inferenceLogging={})).spec
    assert s.inference_logging is not None
    assert (s.inference_logging.topic, s.inference_logging.mode.value) == ("create", "all")
    assert s.inference_logging.enabled


@pytest.mark.parametrize(
    "given, cores", [(1, "1"), (0.5, "0.5"), ("500m", "0.5"), ("2", "2"), ("1500m", "1.5")]
)
def test_cpu_quantities(given: Any, cores: str) -> None:
    assert parse_cpu(given) == Decimal(cores)


@pytest.mark.parametrize("given", [0, "0m", -1, "1.0005", "2 cores", True, float("inf"), 2000])
def test_bad_cpu_quantities(given: Any) -> None:
    with pytest.raises(ValueError):
        parse_cpu(given)


@pytest.mark.parametrize(
    "given, amount", [("1Gi", 2**30), ("512Mi", 512 * 2**20), ("1G", 10**9), (2**30, 2**30)]
)
def test_memory_quantities(given: Any, amount: int) -> None:
    assert parse_memory(given) == amount


@pytest.mark.parametrize("given", ["1Xi", "lots", "1Ki", 1.5, "-1Gi", "2Ei"])
def test_bad_memory_quantities(given: Any) -> None:
    with pytest.raises(ValueError):
        parse_memory(given)


def test_quantities_are_stored_in_canonical_spelling() -> None:
    r = Resources.model_validate({"cpu": 0.25, "memory": "1024Mi"})
    assert (r.cpu, r.memory) == ("250m", "1Gi")
    assert Resources.model_validate({"cpu": "250m", "memory": "1Gi"}) == r


@pytest.mark.parametrize(
    "spec, needle",
    [
        ({"instances": 0}, "scale to zero"),
        ({"transformer": {"script": "t.py"}}, "transformer needs tool 'kserve'"),
        ({"batching": {"maxBatchSize": 4}}, "enabled is false"),
        (
            {"batching": {"enabled": True, "maxBatchSize": 8, "allowedBatchSizes": [4, 16]}},
            "equal maxBatchSize",
        ),
        ({"inferenceLogging": {"topic": "none", "mode": "all"}}, "no effect"),
        ({"transformer": {"script": "t.sh"}, "tool": "kserve"}, ".py file"),
        ({"replicas": 2}, "Extra inputs"),
        ({"model": {"name": "mnist", "version": True}}, "positive whole number"),
    ],
)
def test_rules(spec: dict[str, Any], needle: str) -> None:
    with pytest.raises(ValidationError, match=needle):
        Serving.model_validate(serving(**spec))


def test_kserve_allows_scale_to_zero_and_transformer() -> None:
    s = Serving.model_validate(
        serving(tool="kserve", instances=0, transformer={"script": "Resources/t.py"})
    ).spec
    assert s.instances == 0 and s.transformer is not None and s.transformer.instances == 1


def test_specs_are_immutable() -> None:
    s = Serving.model_validate(serving())
    with pytest.raises(ValidationError):
        s.spec.instances = 3  # type: ignore[misc]


def test_project_backend_is_chosen_by_type() -> None:
    base = {"apiVersion": "declserve.io/v1", "kind": "Project", "metadata": {"name": "p"}}
    docker = Project.model_validate(
        {**base, "spec": {"registry": "r", "backend": {"type": "docker"}}}
    )
    assert docker.spec.backend.type == "docker" and docker.spec.backend.bind_address == "127.0.0.1"
    assert docker.spec.backend.image.startswith("tensorflow/serving:")
    kube = Project.model_validate(
        {**base, "spec": {"registry": "r", "backend": {"type": "kubernetes", "namespace": "ml"}}}
    )
    assert kube.spec.backend.type == "kubernetes" and kube.spec.backend.namespace == "ml"
