"""The TensorFlow Serving TEST DOUBLE (testinfra/tfserving-double), in real containers.

The double stands in for `tensorflow/serving`, which cannot be pulled here. These tests hold
it to the behaviour declserve relies on: the REST API's JSON shapes and errors, the model
config file and its reload (new version loaded before the old one is unloaded, so requests
never fail), versions that are absent, the batching parameters file, flags and SIGTERM.
Every container publishes its REST port on 127.0.0.1 only and is removed after the test.
A few tests at the end check the double's text-protobuf parser and flag parser in-process.
"""

from __future__ import annotations

import http.client as http_client
import importlib.machinery
import importlib.util
import json
import os
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.docker_engine import published_port
from tests.fixtures.polling import wait_until

ROOT = Path(__file__).resolve().parents[2]
DOUBLE_SCRIPT = ROOT / "testinfra" / "tfserving-double" / "tensorflow_model_server"
EXAMPLE_MODELS = ROOT / "examples" / "servings" / "registry" / "Models"
TEST_LABEL = "io.declserve.test"


# ---- model directories and config files -----------------------------------------------------


def make_versions(
    base: Path, model: str, versions: list[int], *, without_pb: tuple[int, ...] = ()
) -> Path:
    """Lay out `base/model/<v>/{saved_model.pb, variables/}` with fake bytes (the double runs no
    TensorFlow; it only needs the files to be there). Versions in `without_pb` get a directory
    without saved_model.pb."""
    root = base / model
    for version in versions:
        vdir = root / str(version)
        (vdir / "variables").mkdir(parents=True, exist_ok=True)
        (vdir / "variables" / "variables.index").write_bytes(b"fake index")
        (vdir / "variables" / "variables.data-00000-of-00001").write_bytes(b"fake data")
        if version not in without_pb:
            (vdir / "saved_model.pb").write_bytes(b"fake saved_model.pb " + str(version).encode())
    return root


def model_config(*models: tuple[str, str]) -> str:
    """A ModelServerConfig with one `config` per (name, version policy text)."""
    entries = "".join(
        "  config {\n"
        f'    name: "{name}"\n'
        f'    base_path: "/models/{name}"\n'
        '    model_platform: "tensorflow"\n'
        f"    model_version_policy {{ {policy} }}\n"
        "  }\n"
        for name, policy in models
    )
    return "# written by the double's tests\nmodel_config_list {\n" + entries + "}\n"


def specific(*versions: int) -> str:
    return "specific { " + " ".join(f"versions: {v}" for v in versions) + " }"


def write_atomic(path: Path, text: str) -> None:
    """Like declserve: write a temporary file and rename it over the old one."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:6]}")
    tmp.write_text(text)
    os.replace(tmp, path)


# ---- HTTP to 127.0.0.1 ---------------------------------------------------------------------


def http(
    method: str, url: str, body: Any = None, raw: bytes | None = None, timeout: float = 5.0
) -> tuple[int, Any]:
    """(status, parsed JSON body) of one request; HTTP errors are answers too."""
    assert url.startswith("http://127.0.0.1:"), url
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def answers(url: str) -> bool:
    """True when something answers HTTP at `url` (any status)."""
    try:
        http("GET", url, timeout=2.0)
        return True
    except (urllib.error.URLError, ConnectionError, http_client.HTTPException, OSError, ValueError):
        return False


# ---- running the double --------------------------------------------------------------------


class Double:
    def __init__(self, container: Any):
        self.container = container
        self._port: int | None = None

    @property
    def base(self) -> str:
        if self._port is None:
            self._port = published_port(self.container, 8501)
        return f"http://127.0.0.1:{self._port}"

    def url(self, path: str) -> str:
        return self.base + path

    def logs(self) -> str:
        return self.container.logs(stdout=True, stderr=True).decode(errors="replace")

    def status(self, model: str) -> dict[str, str]:
        """version -> state, from GET /v1/models/<model>."""
        code, doc = http("GET", self.url(f"/v1/models/{model}"))
        assert code == 200, (code, doc)
        return {v["version"]: v["state"] for v in doc["model_version_status"]}

    def wait_status(self, model: str, expected: dict[str, str], timeout: float = 30.0) -> None:
        wait_until(
            lambda: self.status(model) == expected,
            timeout=timeout,
            message=lambda: (
                f"status of {model} never became {expected}; logs:\n{self.logs()[-3000:]}"
            ),
        )

    def running(self) -> bool:
        self.container.reload()
        return self.container.status == "running"


@pytest.fixture
def run_double(docker_client: Any, tfs_double_image: str) -> Iterator[Any]:
    """run_double(args, models=DIR, config_dir=DIR, env={}, entrypoint=None, wait_port=True)."""
    started: list[Any] = []

    def run(
        args: list[str],
        *,
        models: Path,
        config_dir: Path | None = None,
        env: dict[str, str] | None = None,
        entrypoint: list[str] | None = None,
        wait_port: bool = True,
    ) -> Double:
        volumes = {str(models): {"bind": "/models", "mode": "ro"}}
        if config_dir is not None:
            volumes[str(config_dir)] = {"bind": "/etc/declserve", "mode": "ro"}
        container = docker_client.containers.run(
            tfs_double_image,
            command=args,
            entrypoint=entrypoint,
            name=f"declserve-test-double-{uuid.uuid4().hex[:10]}",
            detach=True,
            environment={"DOUBLE_LOAD_SECONDS": "0.2", **(env or {})},
            labels={TEST_LABEL: "tfserving-double"},
            ports={"8501/tcp": ("127.0.0.1", None)},
            volumes=volumes,
        )
        started.append(container)
        double = Double(container)
        if wait_port:
            wait_until(
                lambda: answers(double.url("/v1/models/_probe")),
                timeout=30,
                message=lambda: (
                    f"the double's REST port never answered; logs:\n{double.logs()[-3000:]}"
                ),
            )
        return double

    yield run
    for container in started:
        try:
            container.remove(force=True)
        except Exception:  # noqa: BLE001 - already gone
            pass


def config_args(poll: int = 1) -> list[str]:
    return [
        "--model_config_file=/etc/declserve/models.config",
        f"--model_config_file_poll_wait_seconds={poll}",
    ]


@pytest.fixture
def layout(tmp_path: Path) -> tuple[Path, Path]:
    models, config_dir = tmp_path / "models", tmp_path / "config"
    models.mkdir()
    config_dir.mkdir()
    return models, config_dir


# ---- the REST API --------------------------------------------------------------------------


def test_status_json_has_tensorflow_servings_shape(run_double, layout) -> None:
    models, config_dir = layout
    make_versions(models, "mnist", [1, 2])
    write_atomic(config_dir / "models.config", model_config(("mnist", specific(2))))
    double = run_double(config_args(), models=models, config_dir=config_dir)

    expected = {
        "model_version_status": [
            {
                "version": "2",
                "state": "AVAILABLE",
                "status": {"error_code": "OK", "error_message": ""},
            }
        ]
    }
    assert http("GET", double.url("/v1/models/mnist")) == (200, expected)
    assert http("GET", double.url("/v1/models/mnist/versions/2")) == (200, expected)
    # version 1 is on disk but not asked for: never loaded, so unknown to the server
    assert http("GET", double.url("/v1/models/mnist/versions/1")) == (
        404,
        {"error": "Could not find version 1 of model mnist"},
    )


def test_predict_answers_carry_the_model_version(run_double, layout) -> None:
    models, config_dir = layout
    make_versions(models, "mnist", [1, 2])
    write_atomic(config_dir / "models.config", model_config(("mnist", specific(2))))
    double = run_double(config_args(), models=models, config_dir=config_dir)

    body = {"instances": [[1, 2, 3], [4.5], {"a": [1, 1], "b": 2}]}
    expected = {"predictions": [12.0, 9.0, 8.0], "model_version": "2"}
    assert http("POST", double.url("/v1/models/mnist:predict"), body) == (200, expected)
    assert http("POST", double.url("/v1/models/mnist/versions/2:predict"), body) == (200, expected)
    # the columnar form answers "outputs", like the real server
    assert http("POST", double.url("/v1/models/mnist:predict"), {"inputs": [[1, 1], [2]]}) == (
        200,
        {"outputs": [4.0, 4.0], "model_version": "2"},
    )
    code, doc = http("POST", double.url("/v1/models/mnist/versions/1:predict"), body)
    assert (code, doc) == (404, {"error": "Servable not found for request: Specific(mnist, 1)"})


def test_unknown_model_and_bad_requests_get_real_errors(run_double, layout) -> None:
    models, config_dir = layout
    make_versions(models, "mnist", [1])
    write_atomic(config_dir / "models.config", model_config(("mnist", specific(1))))
    double = run_double(config_args(), models=models, config_dir=config_dir)

    assert http("GET", double.url("/v1/models/nope")) == (
        404,
        {"error": "Could not find any versions of model nope"},
    )
    assert http("POST", double.url("/v1/models/nope:predict"), {"instances": [1]}) == (
        404,
        {"error": "Servable not found for request: Latest(nope)"},
    )
    assert http("GET", double.url("/v1/models/nope/metadata")) == (
        404,
        {"error": "Servable not found for request: Latest(nope)"},
    )
    code, doc = http("POST", double.url("/v1/models/mnist:predict"), raw=b"{not json")
    assert code == 400 and doc["error"].startswith("JSON Parse error"), doc
    code, doc = http("POST", double.url("/v1/models/mnist:predict"), {"rows": [1]})
    assert code == 400 and "instances" in doc["error"], doc
    code, doc = http("POST", double.url("/v1/models/mnist:predict"), {"instances": [["a"]]})
    assert code == 400 and "is not of expected type: float" in doc["error"], doc
    code, doc = http("GET", double.url("/v1/models/mnist:predict"))
    assert code == 400 and doc["error"].startswith("Malformed request: GET"), doc


def test_metadata_reads_the_real_signature_of_an_example_model(run_double) -> None:
    """Single-model mode through the image's entrypoint (MODEL_NAME, like tensorflow/serving),
    on the repository's real example SavedModels: the signature comes from saved_model.pb."""
    latest = str(max(int(p.name) for p in (EXAMPLE_MODELS / "mnist").iterdir() if p.name.isdigit()))
    double = run_double([], models=EXAMPLE_MODELS, env={"MODEL_NAME": "mnist"})
    double.wait_status("mnist", {latest: "AVAILABLE"})  # default policy: the latest version

    code, doc = http("GET", double.url("/v1/models/mnist/metadata"))
    assert code == 200, doc
    assert doc["model_spec"] == {"name": "mnist", "signature_name": "", "version": latest}
    serving_default = doc["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert serving_default["method_name"] == "tensorflow/serving/predict"
    inputs = serving_default["inputs"]["inputs"]
    assert inputs["dtype"] == "DT_FLOAT"
    assert [d["size"] for d in inputs["tensor_shape"]["dim"]] == ["-1", "784"]
    assert list(serving_default["outputs"]) == ["probabilities"]
    code, doc = http("GET", double.url(f"/v1/models/mnist/versions/{latest}/metadata"))
    assert code == 200 and doc["model_spec"]["version"] == latest


# ---- versions that are absent or broken --------------------------------------------------


def test_a_requested_version_that_does_not_exist_is_not_available(run_double, layout) -> None:
    models, config_dir = layout
    make_versions(models, "mnist", [1, 2])
    write_atomic(config_dir / "models.config", model_config(("mnist", specific(2, 3))))
    double = run_double(config_args(), models=models, config_dir=config_dir)
    double.wait_status("mnist", {"2": "AVAILABLE"})

    warning = (
        "Version 3 of servable mnist, which was requested to be served as a 'specific' "
        "version in the servable's version policy, was not found in the file system"
    )
    # several file-system polls (one a second) have looked for version 3 ...
    wait_until(lambda: double.logs().count(warning) >= 3, timeout=20, message="no repeated warning")
    # ... and it is still not there
    assert double.status("mnist") == {"2": "AVAILABLE"}
    assert http("GET", double.url("/v1/models/mnist/versions/3"))[0] == 404
    assert (
        http("POST", double.url("/v1/models/mnist/versions/3:predict"), {"instances": [1]})[0]
        == 404
    )

    # the server keeps looking: once version 3 appears, it is loaded
    make_versions(models, "mnist", [3])
    double.wait_status("mnist", {"3": "AVAILABLE", "2": "AVAILABLE"})
    assert http("POST", double.url("/v1/models/mnist:predict"), {"instances": [1]}) == (
        200,
        {"predictions": [3.0], "model_version": "3"},
    )


def test_with_no_version_to_load_the_server_waits_without_rest(run_double, layout) -> None:
    """Like the real server: start-up waits until every model has a version AVAILABLE; the REST
    port is not opened before."""
    models, config_dir = layout
    make_versions(models, "mnist", [1])
    write_atomic(config_dir / "models.config", model_config(("mnist", specific(5))))
    double = run_double(config_args(), models=models, config_dir=config_dir, wait_port=False)

    warning = "No versions of servable mnist found under base path /models/mnist"
    wait_until(
        lambda: double.logs().count(warning) >= 2,
        timeout=20,
        message=lambda: f"no 'No versions' warning; logs:\n{double.logs()[-2000:]}",
    )
    assert double.running()
    assert not answers(double.url("/v1/models/mnist"))

    make_versions(models, "mnist", [5])
    wait_until(
        lambda: answers(double.url("/v1/models/mnist")), timeout=30, message="REST never came up"
    )
    double.wait_status("mnist", {"5": "AVAILABLE"})


def test_bump_to_a_version_without_saved_model_keeps_the_old_one(run_double, layout) -> None:
    models, config_dir = layout
    make_versions(models, "mnist", [1, 2], without_pb=(2,))
    write_atomic(config_dir / "models.config", model_config(("mnist", specific(1))))
    double = run_double(config_args(), models=models, config_dir=config_dir)
    double.wait_status("mnist", {"1": "AVAILABLE"})

    write_atomic(config_dir / "models.config", model_config(("mnist", specific(2))))
    wait_until(
        lambda: http("GET", double.url("/v1/models/mnist/versions/2"))[0] == 200,
        timeout=20,
        message="version 2 never tried",
    )
    wait_until(lambda: double.status("mnist").get("2") == "END", timeout=20, message="no END")
    code, doc = http("GET", double.url("/v1/models/mnist/versions/2"))
    status = doc["model_version_status"][0]["status"]
    assert status["error_code"] == "NOT_FOUND"
    assert "Could not find SavedModel .pb or .pbtxt" in status["error_message"]
    # availability is preserved: version 1 still answers
    assert double.status("mnist") == {"2": "END", "1": "AVAILABLE"}
    assert http("POST", double.url("/v1/models/mnist:predict"), {"instances": [5]}) == (
        200,
        {"predictions": [5.0], "model_version": "1"},
    )


# ---- reloading the model config file -----------------------------------------------------


class SteadyClient:
    """Sends :predict without pause, recording which version answered and every failure."""

    def __init__(self, url: str):
        self.url = url
        self.answers: list[str] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                code, doc = http("POST", self.url, {"instances": [[1, 2]]})
                if code != 200:
                    self.failures.append(f"{code} {doc}")
                else:
                    assert doc["predictions"] == [3.0 * int(doc["model_version"])], doc
                    self.answers.append(doc["model_version"])
            except Exception as exc:  # noqa: BLE001 - counted and reported
                self.failures.append(repr(exc))

    def __enter__(self) -> SteadyClient:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def test_reload_1_to_2_loads_before_unloading_and_no_request_fails(run_double, layout) -> None:
    models, config_dir = layout
    make_versions(models, "mnist", [1, 2])
    write_atomic(config_dir / "models.config", model_config(("mnist", specific(1))))
    double = run_double(
        config_args(), models=models, config_dir=config_dir, env={"DOUBLE_LOAD_SECONDS": "1.5"}
    )
    double.wait_status("mnist", {"1": "AVAILABLE"})

    snapshots: list[dict[str, str]] = []
    watching = threading.Event()

    def watch() -> None:
        while not watching.is_set():
            try:
                snapshots.append(double.status("mnist"))
            except Exception as exc:  # noqa: BLE001
                snapshots.append({"error": repr(exc)})

    watcher = threading.Thread(target=watch, daemon=True)
    with SteadyClient(double.url("/v1/models/mnist:predict")) as client:
        watcher.start()
        wait_until(lambda: len(client.answers) >= 20, timeout=30, message="client not answered")
        write_atomic(config_dir / "models.config", model_config(("mnist", specific(2))))
        double.wait_status("mnist", {"2": "AVAILABLE", "1": "END"})
        switched_at = len(client.answers)
        wait_until(
            lambda: len(client.answers) >= switched_at + 20,
            timeout=30,
            message="client stalled after the reload",
        )
        watching.set()
        watcher.join(timeout=10)

    assert client.failures == [], client.failures[:5]
    assert "1" in client.answers and "2" in client.answers
    first_2 = client.answers.index("2")
    assert set(client.answers[first_2:]) == {"2"}, "version 1 answered after version 2 did"
    # the new version was LOADING while the old one still served, and at no moment was
    # there no AVAILABLE version
    assert {"1": "AVAILABLE", "2": "LOADING"} in snapshots, snapshots[:50]
    assert all("AVAILABLE" in s.values() for s in snapshots), [
        s for s in snapshots if "AVAILABLE" not in s.values()
    ][:5]
    # afterwards only version 2 answers
    for _ in range(10):
        assert http("POST", double.url("/v1/models/mnist:predict"), {"instances": [1]}) == (
            200,
            {"predictions": [2.0], "model_version": "2"},
        )
    assert (
        http("POST", double.url("/v1/models/mnist/versions/1:predict"), {"instances": [1]})[0]
        == 404
    )
    logs = double.logs()
    loaded = logs.index("Successfully loaded servable version {name: mnist version: 2}")
    unloading = logs.index("Unloading servable version {name: mnist version: 1}")
    assert loaded < unloading


def test_two_models_in_one_config_and_removing_one(run_double, layout) -> None:
    models, config_dir = layout
    make_versions(models, "mnist", [1, 2])
    make_versions(models, "iris", [7])
    write_atomic(
        config_dir / "models.config",
        model_config(("mnist", "latest { num_versions: 2 }"), ("iris", "all {}")),
    )
    double = run_double(config_args(), models=models, config_dir=config_dir)
    double.wait_status("mnist", {"2": "AVAILABLE", "1": "AVAILABLE"})
    double.wait_status("iris", {"7": "AVAILABLE"})
    assert http("POST", double.url("/v1/models/iris:predict"), {"instances": [1]}) == (
        200,
        {"predictions": [7.0], "model_version": "7"},
    )

    write_atomic(config_dir / "models.config", model_config(("mnist", specific(1))))
    double.wait_status("iris", {"7": "END"})
    double.wait_status("mnist", {"2": "END", "1": "AVAILABLE"})
    assert http("POST", double.url("/v1/models/iris:predict"), {"instances": [1]})[0] == 404


def test_without_polling_the_config_file_is_read_once(run_double, layout) -> None:
    models, config_dir = layout
    make_versions(models, "mnist", [1, 2])
    write_atomic(config_dir / "models.config", model_config(("mnist", specific(1, 9))))
    double = run_double(config_args(poll=0), models=models, config_dir=config_dir)
    double.wait_status("mnist", {"1": "AVAILABLE"})
    # every file-system poll (once a second) warns that version 9 is missing, as long as the
    # config that asks for it is in force
    warning = "Version 9 of servable mnist, which was requested"
    write_atomic(config_dir / "models.config", model_config(("mnist", specific(2))))
    seen = double.logs().count(warning)
    wait_until(
        lambda: double.logs().count(warning) >= seen + 3,
        timeout=20,
        message="the file-system polls stopped: was the config file re-read?",
    )
    assert double.status("mnist") == {"1": "AVAILABLE"}
    assert double.logs().count("Adding/updating models.") == 1


# ---- flags, the batching file, signals -----------------------------------------------------


def wait_exit(double: Double, timeout: float = 30.0) -> int:
    result = double.container.wait(timeout=timeout)
    return int(result["StatusCode"])


def test_malformed_batching_file_fails_the_start(run_double, layout) -> None:
    models, config_dir = layout
    make_versions(models, "mnist", [1])
    write_atomic(config_dir / "models.config", model_config(("mnist", specific(1))))
    write_atomic(config_dir / "batching.config", "max_batch_size: 32\n")  # not { value: 32 }
    double = run_double(
        config_args()
        + ["--enable_batching=true", "--batching_parameters_file=/etc/declserve/batching.config"],
        models=models,
        config_dir=config_dir,
        wait_port=False,
    )
    assert wait_exit(double) != 0
    logs = double.logs()
    assert (
        "Failed to start server. Error: INVALID_ARGUMENT: Invalid protobuf file: "
        "'/etc/declserve/batching.config'" in logs
    ), logs
    assert (
        "Error parsing text-format tensorflow.serving.BatchingParameters: "
        '1:17: Expected "{", found "32".'
        in logs
    )


def test_well_formed_batching_file_starts(run_double, layout) -> None:
    models, config_dir = layout
    make_versions(models, "mnist", [1])
    write_atomic(config_dir / "models.config", model_config(("mnist", specific(1))))
    write_atomic(
        config_dir / "batching.config",
        "max_batch_size { value: 32 }\nbatch_timeout_micros { value: 1000 }\n"
        "num_batch_threads { value: 2 }\nallowed_batch_sizes: 8\nallowed_batch_sizes: 32\n"
        "pad_variable_length_inputs: true\n",
    )
    # the entrypoint replaced, as declserve does: then --rest_api_port is needed (see below)
    double = run_double(
        [
            "--rest_api_port=8501",
            *config_args(),
            "--enable_batching=true",
            "--batching_parameters_file=/etc/declserve/batching.config",
        ],
        models=models,
        config_dir=config_dir,
        entrypoint=["tensorflow_model_server"],
    )
    assert double.status("mnist") == {"1": "AVAILABLE"}
    assert "max_batch_size: 32" in double.logs()


def test_batching_file_without_enable_batching_fails(run_double, layout) -> None:
    models, config_dir = layout
    make_versions(models, "mnist", [1])
    write_atomic(config_dir / "models.config", model_config(("mnist", specific(1))))
    write_atomic(config_dir / "batching.config", "max_batch_size { value: 32 }\n")
    double = run_double(
        config_args() + ["--batching_parameters_file=/etc/declserve/batching.config"],
        models=models,
        config_dir=config_dir,
        wait_port=False,
    )
    assert wait_exit(double) != 0
    assert (
        "batching_parameters_file is set without setting server_options.enable_batching"
        in double.logs()
    )


def test_unknown_flag_exits_non_zero(run_double, layout) -> None:
    models, _ = layout
    double = run_double(["--model_verison_policy=2"], models=models, wait_port=False)
    assert wait_exit(double) == 255
    assert "unknown argument: --model_verison_policy=2" in double.logs()


def test_bad_flag_value_exits_non_zero(run_double, layout) -> None:
    models, _ = layout
    double = run_double(["--file_system_poll_wait_seconds=soon"], models=models, wait_port=False)
    assert wait_exit(double) == 255
    assert "Couldn't interpret value soon for flag file_system_poll_wait_seconds." in double.logs()


def test_rest_api_is_off_unless_a_port_is_given(run_double, layout) -> None:
    """The real binary's --rest_api_port defaults to 0 (no REST); the image's entrypoint passes
    8501. With the entrypoint replaced, as declserve does, the flag is needed."""
    models, config_dir = layout
    make_versions(models, "mnist", [1])
    write_atomic(config_dir / "models.config", model_config(("mnist", specific(1))))
    double = run_double(
        config_args(),
        models=models,
        config_dir=config_dir,
        entrypoint=["tensorflow_model_server"],
        wait_port=False,
    )
    wait_until(
        lambda: "Running gRPC ModelServer at 0.0.0.0:8500" in double.logs(),
        timeout=30,
        message="the server never finished starting",
    )
    assert double.running()
    assert not answers(double.url("/v1/models/mnist"))
    assert "Exporting HTTP/REST API" not in double.logs()


def test_sigterm_stops_it_at_once_with_exit_0(run_double, layout) -> None:
    models, config_dir = layout
    make_versions(models, "mnist", [1])
    write_atomic(config_dir / "models.config", model_config(("mnist", specific(1))))
    double = run_double(config_args(), models=models, config_dir=config_dir)
    double.wait_status("mnist", {"1": "AVAILABLE"})
    started = time.monotonic()
    double.container.kill(signal="SIGTERM")
    code = wait_exit(double, timeout=10)
    elapsed = time.monotonic() - started
    assert code == 0
    assert elapsed < 1.5, f"took {elapsed:.2f}s to stop after SIGTERM"


# ---- in-process: the text-protobuf parser and the flag parser ------------------------------


@pytest.fixture(scope="module")
def tfsd() -> Any:
    loader = importlib.machinery.SourceFileLoader("declserve_tfserving_double", str(DOUBLE_SCRIPT))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


CONFIG = """
# two models, every version policy form
model_config_list {
  config {
    name: "mnist"
    base_path: '/models/mnist'
    model_platform: "tensorflow"
    model_version_policy { specific { versions: 2 versions: 3 } }
    version_labels { key: "stable" value: 2 }
    version_labels { key: "canary" value: 3 }
  }
  config: {
    name: "iris" base_path: "/models/iris", model_platform: "tensorflow";
    model_version_policy: < latest { num_versions: 2 } >
  }
  config { name: "all" base_path: "/m/all" model_platform: "tensorflow"
           model_version_policy { all {} } }
  config { name: "list" base_path: "/m/list" model_platform: "tensorflow"
           model_version_policy { specific { versions: [4, 0x5, 6] } } }
}
"""


def test_parser_reads_model_server_config(tfsd) -> None:
    raw = tfsd.parse_text_proto(CONFIG, "tensorflow.serving.ModelServerConfig")
    specs = tfsd.validate_config(raw)
    assert [(s.name, s.base_path, s.policy) for s in specs] == [
        ("mnist", "/models/mnist", ("specific", (2, 3))),
        ("iris", "/models/iris", ("latest", 2)),
        ("all", "/m/all", ("all", None)),
        ("list", "/m/list", ("specific", (4, 5, 6))),
    ]
    assert specs[0].labels == {"stable": 2, "canary": 3}


@pytest.mark.parametrize(
    "text, error",
    [
        (
            'model_config_list { config { nam: "x" } }',
            '1:30: Message type "tensorflow.serving.ModelConfig" has no field named "nam".',
        ),
        ("model_config_list {\n  config { name: x }\n}", "2:18: Expected string, got: x"),
        (
            'model_config_list { config { model_version_policy { specific { versions: "2" } } } }',
            '1:74: Expected integer, got: "2"',
        ),
        (
            "model_config_list { config { model_version_policy { latest {} all {} } } }",
            '1:63: Field "all" is specified along with field "latest", '
            'another member of oneof "policy_choice".',
        ),
        ('model_config_list { config { name: "x" }', '1:41: Expected "}".'),
        ('model_config_list { config { name "x" } }', '1:35: Expected ":", found ""x"".'),
    ],
)
def test_parser_errors_name_line_and_column(tfsd, text, error) -> None:
    with pytest.raises(tfsd.TextProtoError) as info:
        tfsd.parse_text_proto(text, "tensorflow.serving.ModelServerConfig")
    assert str(info.value) == error


def test_config_validation_like_server_core(tfsd) -> None:
    def check(text: str) -> str:
        with pytest.raises(tfsd.ServerError) as info:
            tfsd.validate_config(
                tfsd.parse_text_proto(text, "tensorflow.serving.ModelServerConfig")
            )
        return str(info.value)

    assert check('model_config_list { config { name: "a" base_path: "/a" } }') == (
        "INVALID_ARGUMENT: Illegal setting neither ModelServerConfig::model_type (deprecated) "
        "nor ModelServerConfig::model_platform."
    )
    assert "Illegal to list model a multiple times" in check(
        'model_config_list { config { name: "a" base_path: "/a" model_platform: "tensorflow" }'
        ' config { name: "a" base_path: "/b" model_platform: "tensorflow" } }'
    )
    assert "to have an absolute path" in check(
        'model_config_list { config { name: "a" base_path: "a" model_platform: "tensorflow" } }'
    )


def test_batching_parameters(tfsd) -> None:
    raw = tfsd.parse_text_proto(
        "max_batch_size { value: 32 } batch_timeout_micros { value: 1000 }\n"
        "allowed_batch_sizes: 16 allowed_batch_sizes: 32 pad_variable_length_inputs: true\n"
        'thread_pool_name { value: "pool" }',
        "tensorflow.serving.BatchingParameters",
    )
    assert raw == {
        "max_batch_size": {"value": 32},
        "batch_timeout_micros": {"value": 1000},
        "allowed_batch_sizes": [16, 32],
        "pad_variable_length_inputs": True,
        "thread_pool_name": {"value": "pool"},
    }
    tfsd.validate_batching(raw)
    with pytest.raises(tfsd.ServerError, match="Last entry in allowed_batch_sizes must match"):
        tfsd.validate_batching({"max_batch_size": {"value": 64}, "allowed_batch_sizes": [16, 32]})
    with pytest.raises(tfsd.TextProtoError, match='has no field named "max_batch"'):
        tfsd.parse_text_proto("max_batch { value: 1 }", "tensorflow.serving.BatchingParameters")


def test_flag_parser(tfsd) -> None:
    flags, unknown = tfsd.parse_flags(
        [
            "--port=8500",
            "--rest_api_port=8501",
            "--model_name=m",
            "--model_base_path=/models/m",
            "--enable_batching",
            "--noflush_filesystem_caches",
            "--tensorflow_intra_op_parallelism=2",
            "--tensorflow_inter_op_parallelism=3",
            "--model_config_file_poll_wait_seconds=5",
            "--per_process_gpu_memory_fraction=0.5",
            "--bogus=1",
            "positional",
        ]
    )
    assert flags["rest_api_port"] == 8501 and flags["model_name"] == "m"
    assert flags["enable_batching"] is True and flags["flush_filesystem_caches"] is False
    assert flags["tensorflow_intra_op_parallelism"] == 2
    assert flags["model_config_file_poll_wait_seconds"] == 5
    assert unknown == ["--bogus=1", "positional"]
    assert tfsd.parse_flags(["--port=http"])[0] is None
    assert tfsd.parse_flags(["--enable_batching=maybe"])[0] is None
    assert tfsd.parse_flags([])[0]["rest_api_port"] == 0  # the real default: no REST API
