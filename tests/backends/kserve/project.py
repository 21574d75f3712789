"""A throwaway project with `tool: kserve` servings on the real cluster and KServe's controller.

The registry is a PersistentVolumeClaim `models` (KServe mounts models from claims), bound to a
hostPath PersistentVolume over the project's own copy of the example registry. That copy lives
under /var/tmp, not under pytest's tmp_path: KServe's TensorFlow runtime runs as uid 1000,
which cannot enter pytest's 0700 directories. The project's `registry` is a symlink to it, so
the artifacts apply writes are what the pods read.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from tests.backends.kubernetes.project import KubeProject
from tests.fixtures.polling import wait_until

SHARED = Path("/var/tmp/declserve-test-kserve")
CLAIM = "models"


class KServeProject(KubeProject):
    __test__ = False

    def __init__(self, base: Path, image: str, *, mode: str = "Standard",
                 transformer_image: str = "", **kw: Any) -> None:
        self.mode = mode
        self.transformer_image = transformer_image
        super().__init__(base, image, **kw)
        self.shared = SHARED / self.name
        self.shared.mkdir(parents=True, mode=0o755)
        SHARED.chmod(0o755)
        registry = self.root / "registry"
        shutil.move(str(registry), str(self.shared / "registry"))
        registry.symlink_to(self.shared / "registry")
        self.pv = f"declserve-test-{self.namespace}"
        self.cluster.kubectl("apply", "-f", "-", input=json.dumps({
            "apiVersion": "v1", "kind": "List", "items": [
                {"apiVersion": "v1", "kind": "PersistentVolume",
                 "metadata": {"name": self.pv, "labels": {"declserve.io/test": "true"}},
                 "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadOnlyMany"],
                          "persistentVolumeReclaimPolicy": "Retain", "storageClassName": "",
                          "hostPath": {"path": str(self.shared / "registry"),
                                       "type": "Directory"}}},
                {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                 "metadata": {"name": CLAIM, "namespace": self.namespace},
                 "spec": {"accessModes": ["ReadOnlyMany"], "storageClassName": "",
                          "volumeName": self.pv, "resources": {"requests": {"storage": "1Gi"}}}},
            ]}))

    def backend_settings(self) -> dict[str, Any]:
        settings = super().backend_settings()
        settings["models"] = {"claim": CLAIM}
        settings["kserve"] = {"deploymentMode": self.mode,
                              "transformerImage": self.transformer_image}
        return settings

    def serving(self, name: str, **spec: Any) -> Path:  # type: ignore[override]
        spec.setdefault("tool", "kserve")
        return super().serving(name, **spec)

    def inference_service(self, name: str) -> dict[str, Any]:
        out = self.kubectl("get", "inferenceservice", name, "-o", "json").stdout
        return dict(json.loads(out))

    def cleanup(self) -> None:
        # InferenceServices carry KServe's finalizer: they go while the controller runs, or
        # the namespace would hang in Terminating
        self.kubectl("delete", "inferenceservices", "--all", "--wait=false", check=False)
        wait_until(lambda: not json.loads(self.kubectl(
            "get", "inferenceservices", "-o", "json").stdout)["items"], timeout=120,
            message=f"the InferenceServices of {self.namespace} to be gone")
        super().cleanup()
        self.cluster.kubectl("delete", "persistentvolume", self.pv, "--wait=false", check=False)
        shutil.rmtree(self.shared, ignore_errors=True)
