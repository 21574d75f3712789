"""The Docker backend's essence, both ways: made from a spec and read back from inspect output."""

from __future__ import annotations

from pathlib import Path

from declserve.backends import docker_essence as E
from declserve.backends import tfserving as tfs
from declserve.desired import DesiredServing
from declserve.spec import Serving


def desired(**spec: object) -> DesiredServing:
    doc = {"apiVersion": "declserve.io/v1", "kind": "Serving", "metadata": {"name": "m", "labels": {"team": "a"}},
           "spec": {"model": {"name": "mnist", "version": 2}, **spec}}
    return DesiredServing(Serving.model_validate(doc), 2, Path("/reg/Models/mnist"), "m.yaml:1")


def inspect_of(d: DesiredServing, **host: object) -> dict[str, object]:
    """What `docker inspect` says of a container declserve created for `d` (engine defaults included)."""
    res = d.spec.resources
    return {
        "Args": tfs.server_args(2, d.spec.batching.enabled),
        "Config": {"Image": "tfs:1", "Labels": {"team": "a", "maintainer": "image-label",
                                                  E.LABEL_USER_KEYS: "team"}},
        "HostConfig": {"NanoCpus": int(res.cpu_cores * 10**9), "Memory": res.memory_bytes,
                       "RestartPolicy": {"Name": "unless-stopped", "MaximumRetryCount": 0},
                       "CpuShares": 0, "OomKillDisable": False, **host},
        "Mounts": [{"Destination": "/models/mnist", "Source": "/reg/Models/mnist"},
                   {"Destination": tfs.CONFIG_DIR, "Source": "/state/m"}],
        "State": {"Running": True},
    }


def test_what_declserve_created_reads_back_equal_and_engine_defaults_are_ignored() -> None:
    for d in (desired(), desired(batching={"enabled": True, "maxBatchSize": 8}),
              desired(resources={"cpu": "1500m", "memory": "3Gi"})):
        want = E.desired_replica_essence(d, "tfs:1", "unless-stopped", 2)
        assert E.observed_replica_essence(inspect_of(d)) == want


def test_gpus_come_from_device_requests() -> None:
    d = desired(resources={"gpus": 2})
    attrs = inspect_of(d, DeviceRequests=[{"Count": 2, "Capabilities": [["gpu"]]}])
    assert E.observed_replica_essence(attrs)["resources"]["gpus"] == 2
    assert E.desired_replica_essence(d, "tfs:1", "unless-stopped", 2)["resources"]["gpus"] == 2


def test_image_labels_are_not_user_labels() -> None:
    observed = E.observed_replica_essence(inspect_of(desired()))
    assert observed["labels"] == {"team": "a"}


def test_model_config_file_round_trip_and_hand_edits() -> None:
    text = tfs.model_config_text("mnist", 7)
    assert tfs.parse_model_config(text) == {"name": "mnist", "version": 7}
    edited = text.replace("versions: 7", "versions: 7 versions: 8")
    assert tfs.parse_model_config(edited)["version"] == [7, 8]
    assert tfs.parse_model_config("garbage")["version"] is None


def test_batching_file_round_trip() -> None:
    params = {"max_batch_size": 32, "batch_timeout_micros": 5000, "num_batch_threads": 2,
              "allowed_batch_sizes": [8, 16, 32], "pad_variable_length_inputs": True}
    assert tfs.parse_batching_config(tfs.batching_config_text(params)) == params


def test_available_versions_ignore_other_states() -> None:
    body = b'{"model_version_status": [{"version": "1", "state": "END"}, {"version": "2", "state": "AVAILABLE"}]}'
    assert tfs.available_versions(body) == (2,)
