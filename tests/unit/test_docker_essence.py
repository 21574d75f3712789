"""The Docker backend's essence, both ways: made from a spec and read back from inspect output."""

from __future__ import annotations

from pathlib import Path

from declserve.backends import tfserving as tfs
from declserve.backends.docker import essence as E
from declserve.backends.docker import proxy as X
from declserve.backends.docker.files import write_serving_files
from declserve.backends.docker.settings import DockerSettings
from declserve.desired import DesiredServing, ModelSource
from declserve.spec import Serving

SETTINGS = DockerSettings(
    project="p",
    image="tfs:1",
    bind_address="127.0.0.1",
    restart_policy="unless-stopped",
    state_root=Path("/state/p"),
    poll_seconds=2,
    ready_timeout=5,
    pull_policy="never",
)


def desired(**spec: object) -> DesiredServing:
    doc = {
        "apiVersion": "declserve.io/v1",
        "kind": "Serving",
        "metadata": {"name": "m", "labels": {"team": "a"}},
        "spec": {"model": {"name": "mnist", "version": 2}, **spec},
    }
    serving = Serving.model_validate(doc)
    model = serving.spec.model
    version = model.version if isinstance(model.version, int) else 2
    return DesiredServing(serving, ModelSource(model.name, version), "m.yaml:1")


def inspect_of(
    d: DesiredServing, source: str = "/reg/Models/mnist", **host: object
) -> dict[str, object]:
    """What `docker inspect` says of a container declserve made for `d` (with engine defaults)."""
    res = d.spec.resources
    return {
        "Args": tfs.server_args(2, d.spec.batching.enabled),
        "Config": {
            "Image": "tfs:1",
            "Labels": {"team": "a", "maintainer": "image-label", E.LABEL_USER_KEYS: "team"},
        },
        "HostConfig": {
            "NanoCpus": int(res.cpu_cores * 10**9),
            "Memory": res.memory_bytes,
            "RestartPolicy": {"Name": "unless-stopped", "MaximumRetryCount": 0},
            "CpuShares": 0,
            "OomKillDisable": False,
            **host,
        },
        "Mounts": [
            {"Destination": "/models/mnist", "Source": source},
            {"Destination": tfs.CONFIG_DIR, "Source": "/state/m"},
        ],
        "State": {"Running": True},
    }


def test_what_declserve_created_reads_back_equal_and_engine_defaults_are_ignored() -> None:
    for d in (
        desired(),
        desired(batching={"enabled": True, "maxBatchSize": 8}),
        desired(resources={"cpu": "1500m", "memory": "3Gi"}),
    ):
        assert E.replica_essence(inspect_of(d)) == E.desired_replica(d, SETTINGS)


def test_the_registry_location_of_the_runner_is_not_part_of_the_essence() -> None:
    d = desired()
    here = E.replica_essence(inspect_of(d, "/home/a/clone/registry/Models/mnist"))
    there = E.replica_essence(inspect_of(d, "/srv/b/registry/Models/mnist"))
    assert here == there and here["modelSource"] == "Models/mnist"
    elsewhere = E.replica_essence(inspect_of(d, "/tmp/my-model"))
    assert elsewhere["modelSource"] == "/tmp/my-model"
    assert "/" not in str(E.desired_essence(d, SETTINGS)["modelSource"]).removeprefix("Models/")


def test_gpus_come_from_device_requests() -> None:
    d = desired(resources={"gpus": 2})
    attrs = inspect_of(d, DeviceRequests=[{"Count": 2, "Capabilities": [["gpu"]]}])
    assert E.replica_essence(attrs)["resources.gpus"] == 2
    assert E.desired_replica(d, SETTINGS)["resources.gpus"] == 2


def test_image_labels_are_not_user_labels() -> None:
    observed = E.replica_essence(inspect_of(desired()))
    assert {k: v for k, v in observed.items() if k.startswith("labels.")} == {"labels.team": "a"}


def test_replicas_that_agree_collapse_and_ones_that_differ_are_named() -> None:
    a = {"resources.cpu": "1", "image": "tfs:1", "running": True}
    b = {"resources.cpu": "2", "image": "tfs:1", "running": True}
    assert E.collapse([("m-0", a), ("m-1", dict(a))]) == a
    mixed = E.collapse([("m-0", a), ("m-1", b)])
    assert mixed["image"] == "tfs:1"
    assert mixed["resources.cpu"] == "mixed: 1 on m-0; 2 on m-1"


def test_serving_essence_equals_the_desired_one_for_what_declserve_made(tmp_path: Path) -> None:
    d = desired(instances=2, batching={"enabled": True, "maxBatchSize": 8})
    write_serving_files(tmp_path, d)  # the files as apply writes them, read back as plan reads them
    replica = E.replica_essence(inspect_of(d))
    files = E.files_essence(tmp_path)
    port = X.listen_port(tmp_path, "127.0.0.1", None)
    X.write_config(tmp_path, serving="m", model="mnist", topic=None, mode="none", bootstrap="",
                   bind="127.0.0.1", port=port, max_record_bytes=SETTINGS.max_message_bytes)
    front = X.observed({"Config": {"Image": SETTINGS.proxy_image}}, tmp_path)
    observed = E.serving_essence([("p-m-0", replica), ("p-m-1", dict(replica))], files, front)
    assert observed == E.desired_essence(d, SETTINGS)
    assert X.listen_port(tmp_path, "127.0.0.1", None) == port  # chosen once, then kept


def test_one_stopped_replica_makes_the_state_mixed() -> None:
    d = desired(instances=2)
    up = E.replica_essence(inspect_of(d))
    down = {**up, "running": False}
    files = {"model": {"name": "mnist", "version": 2}, "protected": False}
    observed = E.serving_essence([("p-m-0", up), ("p-m-1", down)], files, {})
    assert observed["state"] == "mixed: stopped on p-m-1; running on p-m-0"


def test_model_config_file_round_trip_and_hand_edits() -> None:
    text = tfs.model_config_text("mnist", 7)
    assert tfs.parse_model_config(text) == {"name": "mnist", "version": 7}
    edited = text.replace("versions: 7", "versions: 7 versions: 8")
    assert tfs.parse_model_config(edited)["version"] == [7, 8]
    assert tfs.parse_model_config("garbage")["version"] is None


def test_batching_file_round_trip() -> None:
    params = {
        "max_batch_size": 32,
        "batch_timeout_micros": 5000,
        "num_batch_threads": 2,
        "allowed_batch_sizes": [8, 16, 32],
        "pad_variable_length_inputs": True,
    }
    assert tfs.parse_batching_config(tfs.batching_config_text(params)) == params


def test_available_versions_ignore_other_states() -> None:
    body = (
        b'{"model_version_status": [{"version": "1", "state": "END"},'
        b' {"version": "2", "state": "AVAILABLE"}]}'
    )
    assert tfs.available_versions(body) == (2,)


def test_every_line_of_the_files_declserve_writes_is_read_back() -> None:
    text = tfs.model_config_text("mnist", 2)
    assert tfs.model_config_fields(text) == {"base_path": "/models/mnist",
                                             "model_platform": "tensorflow", "entries": 1}
    moved = text.replace('"/models/mnist"', '"/models/other"')
    assert tfs.model_config_fields(moved)["base_path"] == "/models/other"
    batching = tfs.batching_config_text({"max_batch_size": 8})
    assert "unrecognised" not in tfs.parse_batching_config(batching)
    edited = batching + 'thread_pool_name: { value: "x" }\n'
    assert tfs.parse_batching_config(edited)["unrecognised"] == ['thread_pool_name: { value: "x" }']
