"""Benchmark of `declserve plan` on the Kubernetes backend: 1,000 servings on the real cluster.

Run: `.venv/bin/python bench/kubernetes_plan.py` with the cluster running (`scripts/cluster.sh
up`; the kubeconfig is taken from `scripts/cluster.sh env`) and the TensorFlow Serving double
imported into it (`scripts/cluster.sh images`; pods never pull). Everything happens in a fresh
namespace `bench-<pid>`, deleted at the end. Every figure is measured in this run:

* setup: `declserve apply --parallelism 10` of 1,000 servings, each `instances: 1` but
  `state: stopped`: a Deployment (replicas 0), a Service and a ConfigMap each, 3,000 objects,
  and no pod (1,000 pods cannot run on this 2-core node).
* plan, no change: `declserve plan --detailed-exitcode` (a fresh process, as a user runs it,
  exit 0 expected) against the floor, a fresh process that loads the kubernetes client and
  does one LIST per kind declserve reads (Deployments, Services, ConfigMaps, Pods, by the
  project's label, bodies parsed with `json.loads`) and nothing else; and against `kubectl diff
  --server-side` of the manifests `declserve plan --manifests DIR` wrote (the very objects apply
  would send, as declserve's field manager). Median wall time of several runs each, and the
  peak resident memory (ru_maxrss of the child and its children).
* plan, one serving in ten bumped to a new version: the same three, on the changed specs.
* version bump of 20 running servings (instances 1): wall time of `declserve apply` with
  `--parallelism 10` and with `--parallelism 1`, each waiting until every pod serves the new
  version (a rolling update per serving). Each pod has `--bump-cpu` (40m): 20 pods and the
  surge of 10 must fit in what other users leave of the node's 2 CPUs; at 20m the double's
  probes time out under CFS throttling and the rollouts never finish.

`--servings 0` runs the bump alone, `--bump 0` the plans alone.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KUBECTL = "/usr/bin/kubectl"
IMAGE = "declserve/tfserving-double:latest"
SERVICE_CIDR = "10.96.8.0/21"  # beside the cluster's 10.96.0.0/24, far from the pods' 10.244/16

# The floor reads the way declserve's client does (the client's ApiClient, JSON bodies): the
# typed API classes (CoreV1Api ...) would load the client's models too, measured as TYPED.
FLOOR = """
import json, sys
from kubernetes import client, config
cfg = client.Configuration()
config.load_kube_config(sys.argv[1], None, cfg, persist_config=False)
cfg.proxy = None
api = client.ApiClient(cfg)
query = "?labelSelector=declserve.io%2Fproject%3D" + sys.argv[3]
found = []
for path in ("/apis/apps/v1/namespaces/{}/deployments", "/api/v1/namespaces/{}/services",
             "/api/v1/namespaces/{}/configmaps", "/api/v1/namespaces/{}/pods"):
    method, url, headers, _, _ = api.param_serialize(
        "GET", path.format(sys.argv[2]), header_params={"Accept": "application/json"},
        auth_settings=["BearerToken"])
    found.append(len(json.loads(api.call_api(method, url + query, headers).read())["items"]))
print(*found)
"""

TYPED = """
import json, sys
from kubernetes import client, config
cfg = client.Configuration()
config.load_kube_config(sys.argv[1], None, cfg, persist_config=False)
cfg.proxy = None
api = client.ApiClient(cfg)
core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
selector = "declserve.io/project=" + sys.argv[3]
for list_kind in (apps.list_namespaced_deployment, core.list_namespaced_service,
                  core.list_namespaced_config_map, core.list_namespaced_pod):
    json.loads(list_kind(sys.argv[2], label_selector=selector, _preload_content=False).data)
"""

WRAPPER = """
import json, resource, subprocess, sys, time
start = time.perf_counter()
p = subprocess.run(sys.argv[1:], capture_output=True, text=True)
wall = time.perf_counter() - start
rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps([wall, rss, p.returncode, p.stdout[-3000:], p.stderr[-3000:]]))
"""


def env() -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    out["NO_PROXY"] = out["no_proxy"] = "127.0.0.1,localhost"
    out["PYTHONPATH"] = str(ROOT)
    return out


def kubeconfig() -> str:
    line = subprocess.run(["bash", str(ROOT / "scripts/cluster.sh"), "env"], capture_output=True,
                          text=True).stdout.strip()
    if not line.startswith("export KUBECONFIG="):
        raise SystemExit("no cluster is running: start it with `scripts/cluster.sh up`")
    return line.split("=", 1)[1]


def child(command: list[str], expect: tuple[int, ...]) -> tuple[float, int, str]:
    """Wall seconds, peak RSS (KiB, the child and its children) and stdout of one process."""
    out = subprocess.run([sys.executable, "-c", WRAPPER, *command], capture_output=True,
                         text=True, check=True, env=env(), cwd=ROOT)
    wall, rss, code, stdout, stderr = json.loads(out.stdout)
    if code not in expect:
        raise SystemExit(f"{' '.join(command[:6])} exited {code}, not {expect}:\n{stdout}\n"
                         f"{stderr}")
    return wall, rss, stdout


def measure(command: list[str], runs: int, expect: tuple[int, ...]) -> tuple[float, int, str]:
    results = [child(command, expect) for _ in range(runs)]
    return statistics.median(r[0] for r in results), max(r[1] for r in results), results[-1][2]


class Bench:
    def __init__(self, base: Path, namespace: str, kube: str) -> None:
        self.base, self.namespace, self.kubeconfig = base, namespace, kube
        self.cli = [sys.executable, "-m", "declserve.cli"]

    def kubectl(self, *args: str, check: bool = True, input: str | None = None
                ) -> subprocess.CompletedProcess[str]:
        return subprocess.run([KUBECTL, "--kubeconfig", self.kubeconfig, *args],
                              capture_output=True, text=True, check=check, env=env(),
                              input=input)

    def project(self, name: str, servings: int, state: str, version: int, prefix: str = "s",
                cpu: str = "20m") -> Path:
        root = self.base / name
        (root / "servings").mkdir(parents=True)
        shutil.copytree(ROOT / "examples/servings/registry", root / "registry")
        (root / "declserve.yaml").write_text(
            "apiVersion: declserve.io/v1\nkind: Project\n"
            f"metadata: {{name: {name}}}\n"
            "spec:\n  registry: registry\n  backend:\n    type: kubernetes\n"
            f"    kubeconfig: {self.kubeconfig}\n    namespace: {self.namespace}\n"
            f"    image: {IMAGE}\n    pullPolicy: Never\n    preStopSeconds: 2\n"
            "    readyTimeoutSeconds: 300\n"
        )
        self.write_specs(root, servings, state, lambda i: version, prefix, cpu)
        return root

    @staticmethod
    def write_specs(root: Path, servings: int, state: str, version: object, prefix: str = "s",
                    cpu: str = "20m") -> None:
        for i in range(servings):
            (root / "servings" / f"{prefix}{i:04d}.yaml").write_text(
                "apiVersion: declserve.io/v1\nkind: Serving\n"
                f"metadata: {{name: {prefix}{i:04d}}}\n"
                f"spec:\n  model: {{name: iris, version: {version(i)}}}\n"  # type: ignore[operator]
                f"  state: {state}\n  instances: 1\n"
                # small, so that the pods and their surge fit beside the other users' pods
                f"  resources: {{cpu: {cpu}, memory: 64Mi}}\n"
            )

    def service_range(self, name: str) -> None:
        """A ServiceCIDR of the bench's own beside the cluster's: that range is a /24 (254
        addresses for every user of the cluster), too small for 1,000 Services. It is removed
        at the end; the API server removes it once no Service holds an address from it."""
        self.kubectl("apply", "-f", "-", input=json.dumps({
            "apiVersion": "networking.k8s.io/v1", "kind": "ServiceCIDR",
            "metadata": {"name": name}, "spec": {"cidrs": [SERVICE_CIDR]}}))

    def apply(self, root: Path, parallelism: int) -> float:
        start = time.perf_counter()
        done = subprocess.run([*self.cli, "apply", "-C", str(root), "--auto-approve",
                               "--no-color", "--parallelism", str(parallelism)],
                              capture_output=True, text=True, env=env(), cwd=ROOT)
        wall = time.perf_counter() - start
        if done.returncode != 0:
            raise SystemExit(f"apply failed ({done.returncode}):\n{done.stdout[-3000:]}\n"
                             f"{done.stderr[-3000:]}")
        return wall

    def manifests(self, root: Path, into: Path, code: int) -> int:
        done = subprocess.run([*self.cli, "plan", "-C", str(root), "--detailed-exitcode",
                               "--no-color", "--manifests", str(into)],
                              capture_output=True, text=True, env=env(), cwd=ROOT)
        if done.returncode != code:
            raise SystemExit(f"plan --manifests exited {done.returncode}:\n{done.stderr}")
        return len(list(into.iterdir()))

    def compare(self, what: str, root: Path, project: str, runs: int, diff_runs: int,
                code: int) -> None:
        manifests = self.base / f"manifests-exit{code}"
        files = self.manifests(root, manifests, code)
        plan_wall, plan_rss, out = measure(
            [*self.cli, "plan", "-C", str(root), "--detailed-exitcode", "--no-color"],
            runs, (code,))
        summary = out.strip().splitlines()[-1]
        floor_wall, floor_rss, counts = measure(
            [sys.executable, "-c", FLOOR, self.kubeconfig, self.namespace, project],
            runs, (0,))
        diff_wall, diff_rss, _ = measure(
            [KUBECTL, "--kubeconfig", self.kubeconfig, "-n", self.namespace, "diff",
             "--server-side", "--field-manager=declserve", "--force-conflicts",
             "-f", str(manifests)],
            diff_runs, (0,) if code == 0 else (1,))
        typed = ""
        if code == 0:
            typed_wall, typed_rss, _ = measure(
                [sys.executable, "-c", TYPED, self.kubeconfig, self.namespace, project],
                diff_runs, (0,))
            typed = (f"  (the same LISTs through the typed CoreV1Api/AppsV1Api, "
                     f"_preload_content=False: wall {typed_wall * 1000:.0f} ms, peak RSS "
                     f"{typed_rss / 1024:.1f} MiB: loading the client's models costs that)\n")
        deployments, services, configs, pods = counts.split()
        print(f"plan, {what} (median of {runs} runs; kubectl diff of {diff_runs}):")
        print(f"  declserve plan  wall {plan_wall * 1000:8.0f} ms   peak RSS "
              f"{plan_rss / 1024:6.1f} MiB   exit {code}: {summary}")
        print(f"  floor           wall {floor_wall * 1000:8.0f} ms   peak RSS "
              f"{floor_rss / 1024:6.1f} MiB   (kubernetes client, 4 LISTs: {deployments} "
              f"Deployments, {services} Services, {configs} ConfigMaps, {pods} Pods)")
        print(typed, end="")
        print(f"  kubectl diff    wall {diff_wall * 1000:8.0f} ms   peak RSS "
              f"{diff_rss / 1024:6.1f} MiB   (--server-side, {files} manifests from "
              "plan --manifests)")
        print(f"  ratios: plan / floor {plan_wall / floor_wall:5.2f} x (goal <= 1.5);   "
              f"kubectl diff / plan {diff_wall / plan_wall:6.1f} x (goal >= 10);   "
              f"memory plan / floor {plan_rss / floor_rss:4.2f} x")

    def plans(self, name: str, servings: int, runs: int, diff_runs: int) -> None:
        root = self.project(name, servings, "stopped", 1)
        wall = self.apply(root, 10)
        print(f"setup: apply --parallelism 10 of {servings} servings, state stopped "
              f"(replicas 0: {servings} pods cannot run on this node), "
              f"{3 * servings} objects: {wall:.1f} s (their Services take addresses from "
              f"a ServiceCIDR {SERVICE_CIDR} of the bench's: the cluster's range has 254)",
              flush=True)
        self.compare(f"{servings} servings, no change", root, name, runs, diff_runs, 0)
        self.write_specs(root, servings, "stopped", lambda i: 2 if i % 10 == 0 else 1)
        self.compare(f"{servings} servings, {servings // 10} with a new version", root, name,
                     runs, diff_runs, 2)

    def bump(self, servings: int, cpu: str) -> None:
        name = f"{self.namespace.replace('-', '')}b"
        root = self.project(name, servings, "running", 1, "b", cpu)
        print(f"version bump, {servings} running servings (instances 1, the TensorFlow Serving "
              f"double, cpu {cpu} each):", flush=True)
        created = self.apply(root, 10)
        print(f"  create, --parallelism 10:           {created:7.1f} s", flush=True)
        for version, parallelism in ((2, 10), (1, 1)):
            self.write_specs(root, servings, "running", lambda i, v=version: v, "b", cpu)
            wall = self.apply(root, parallelism)
            print(f"  bump to version {version}, --parallelism {parallelism:<2}: {wall:7.1f} s",
                  flush=True)
            if parallelism == 1:
                one = wall
            else:
                ten = wall
        print(f"  ratio --parallelism 1 / --parallelism 10: {one / ten:5.2f} x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servings", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5, help="runs of plan and of the floor")
    parser.add_argument("--diff-runs", type=int, default=3, help="runs of kubectl diff")
    parser.add_argument("--bump", type=int, default=20, help="running servings to bump")
    parser.add_argument("--bump-cpu", default="40m",
                        help="CPU of each bumped serving (its pods and their surge must fit)")
    args = parser.parse_args()
    kube = kubeconfig()
    namespace = f"bench-{os.getpid()}"
    base = Path(tempfile.mkdtemp(prefix="declserve-bench-"))
    kubectl_version = subprocess.run([KUBECTL, "version", "--client"], capture_output=True,
                                     text=True, env=env()).stdout.splitlines()[0]
    print(f"declserve plan benchmark on Kubernetes, {time.strftime('%Y-%m-%d')}, "
          f"{os.cpu_count()} cores, one node shared with other users; {kubectl_version} "
          f"({KUBECTL})")
    bench = Bench(base, namespace, kube)
    bench.kubectl("create", "namespace", namespace)
    bench.service_range(namespace)
    try:
        name = f"bench{os.getpid()}"
        if args.servings:
            bench.plans(name, args.servings, args.runs, args.diff_runs)
        if args.bump:
            bench.bump(args.bump, args.bump_cpu)
    finally:
        bench.kubectl("delete", "namespace", namespace, "--timeout=600s", check=False)
        bench.kubectl("delete", "servicecidr", namespace, "--wait=false", check=False)
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
