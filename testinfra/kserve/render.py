"""Render KServe's manifests for a controller run out of cluster (used by run.sh).

    render.py configmap SRC AGENT_IMAGE  inferenceservice-config for Standard mode, no ingress,
                                         the locally built agent image
    render.py webhooks SRC PORT CA_FILE  config/webhook/manifests.yaml with url clientConfigs

Output: YAML on stdout. Needs PyYAML (Debian's python3-yaml).
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

import yaml

# The label run.sh's `down` and `status` find its webhook configurations by.
LABEL = {"declserve.io/testinfra": "kserve"}


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (the ConfigMap's JSON sections) as literal blocks, like upstream."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def configmap(src: Path, agent_image: str) -> str:
    cm = yaml.safe_load(src.read_text())
    data = cm["data"]
    for section in ("logger", "batcher", "agent"):
        sidecar = json.loads(data[section])
        # the locally built image (the cluster pulls nothing), and requests that fit beside
        # the other tests' pods on the 2-core node (upstream's batcher asks 1 CPU and 1Gi)
        sidecar.update(image=agent_image, cpuRequest="50m", memoryRequest="64Mi")
        data[section] = json.dumps(sidecar, indent=2)
    # a documentation block, not configuration; it is 600 lines of noise in every diff
    data.pop("_example", None)
    data["deploy"] = json.dumps({"defaultDeploymentMode": "Standard"}, indent=2)
    ingress = json.loads(data["ingress"])
    # no Istio, Knative or Gateway API here: an Ingress nobody serves would only confuse
    ingress.update(
        disableIngressCreation=True, disableIstioVirtualHost=True, enableGatewayApi=False
    )
    data["ingress"] = json.dumps(ingress, indent=2)
    cm["metadata"].setdefault("labels", {}).update(LABEL)
    return yaml.dump(cm, Dumper=_Dumper, sort_keys=False)


def webhooks(src: Path, port: int, ca_file: Path) -> str:
    ca = base64.b64encode(ca_file.read_bytes()).decode()
    docs = [d for d in yaml.safe_load_all(src.read_text()) if d]
    for doc in docs:
        doc["metadata"].pop("creationTimestamp", None)
        doc["metadata"].setdefault("labels", {}).update(LABEL)
        for hook in doc["webhooks"]:
            path = hook["clientConfig"]["service"]["path"]
            # the apiserver calls the manager on the host's loopback (it runs there too)
            hook["clientConfig"] = {"url": f"https://127.0.0.1:{port}{path}", "caBundle": ca}
            hook["timeoutSeconds"] = 10
    return yaml.safe_dump_all(docs, sort_keys=False)


def main(argv: list[str]) -> int:
    if len(argv) == 4 and argv[1] == "configmap":
        sys.stdout.write(configmap(Path(argv[2]), argv[3]))
    elif len(argv) == 5 and argv[1] == "webhooks":
        sys.stdout.write(webhooks(Path(argv[2]), int(argv[3]), Path(argv[4])))
    else:
        sys.stderr.write(__doc__ or "")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
