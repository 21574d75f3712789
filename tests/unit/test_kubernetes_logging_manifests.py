"""The Kubernetes backend's logging sidecar (pure): its config is one the proxy accepts, and
the objects read back from what declserve applied give the same essence (no phantom diff)."""

from __future__ import annotations

import json

from declserve.backends import tfserving as tfs
from declserve.backends.kubernetes import essence as E
from declserve.backends.kubernetes import manifests as M
from declserve.backends.kubernetes.settings import KubernetesSettings
from declserve.desired import DesiredServing, ModelSource
from declserve.logproxy import proxy as P
from declserve.spec import Serving

SETTINGS = KubernetesSettings(
    project="p", namespace="ns", image="tfs:1", pull_policy="Never", service_type="NodePort",
    proxy_image="declserve/logproxy:abc", pre_stop_seconds=2, ready_timeout=30,
    models_host_path="/reg", kafka_bootstrap="10.244.0.1:9093",
)


def desired(mode: str | None) -> DesiredServing:
    spec: dict[str, object] = {"model": {"name": "mnist", "version": 2}}
    if mode:
        spec["inferenceLogging"] = {"topic": "create", "mode": mode}
    serving = Serving.model_validate({"apiVersion": "declserve.io/v1", "kind": "Serving",
                                      "metadata": {"name": "m"}, "spec": spec})
    return DesiredServing(serving, ModelSource("mnist", 2), "m.yaml:1",
                          "p-m-inference" if mode else None, bool(mode))


def test_the_sidecar_config_is_one_the_proxy_accepts_with_the_pods_brokers() -> None:
    shape = M.ServingShape.of(desired("predictions"), SETTINGS)
    data = M.config_data(SETTINGS, shape)
    cfg = P.parse_config(json.loads(data[M.PROXY_CONFIG]), M.PROXY_CONFIG)
    assert (cfg.mode, cfg.topic, cfg.bootstrap) == ("predictions", "p-m-inference",
                                                    "10.244.0.1:9093")
    assert (cfg.host, cfg.port) == ("0.0.0.0", M.PROXY_PORT)
    assert cfg.upstreams_file == f"{tfs.CONFIG_DIR}/{M.UPSTREAMS}"
    assert cfg.model_config_file == f"{tfs.CONFIG_DIR}/{tfs.MODEL_CONFIG}"
    assert cfg.max_request_bytes == cfg.max_record_bytes - M.REPLY_ROOM
    assert P.parse_upstreams(data[M.UPSTREAMS]) == [f"http://127.0.0.1:{tfs.REST_PORT}"]


def test_the_sidecar_runs_the_proxy_and_the_server_outlives_its_drain() -> None:
    dep = M.deployment(SETTINGS, M.ServingShape.of(desired("all"), SETTINGS))
    pod = dep["spec"]["template"]["spec"]
    serving, proxy = pod["containers"]
    assert proxy["command"][:2] == ["python3", "/app/proxy.py"]  # the image has no ENTRYPOINT
    assert "args" not in proxy
    assert proxy["lifecycle"]["preStop"]["sleep"]["seconds"] == 2
    assert serving["lifecycle"]["preStop"]["sleep"]["seconds"] == 2 + M.PROXY_DRAIN_S
    assert pod["terminationGracePeriodSeconds"] > 2 + M.PROXY_DRAIN_S + M.PROXY_FLUSH_S
    files = {i["key"] for i in pod["volumes"][1]["configMap"]["items"]}
    assert {M.PROXY_CONFIG, M.UPSTREAMS} <= files
    assert M.service(SETTINGS, M.ServingShape.of(desired("all"), SETTINGS))[
        "spec"]["ports"][0]["targetPort"] == M.PORT_FRONT


def test_what_declserve_applied_reads_back_as_the_desired_essence() -> None:
    for mode in (None, "all", "predictions"):
        shape = M.ServingShape.of(desired(mode), SETTINGS)
        dep, svc = M.deployment(SETTINGS, shape), M.service(SETTINGS, shape)
        svc["spec"]["ports"][0]["nodePort"] = 31000
        live, _ = E.live_essence(SETTINGS, dep, M.config_map(SETTINGS, shape), svc)
        want = E.desired_essence(SETTINGS, shape)
        want["service"]["nodePort"] = live["service"]["nodePort"]  # chosen by the API server
        assert live == want, mode
        assert ("logging" in live) == (mode is not None)
