"""The files under cluster/, checked offline: the launcher configs against Ray's own schema, the
KubeRay manifests against the v1.7.0 CRDs with unknown fields rejected, nothing opens Ray's or
MLflow's ports to the world, no secret is written down, and the RayJob runs a real sweep command.
The scanners are tested on bad snippets too, so that a pass means something."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import ipaddress
import json
import re
import shlex
import sys
from functools import cache
from pathlib import Path

import jsonschema
import pytest
import yaml

from fake2real import cli
from fake2real.presets import PRESETS

REPO = Path(__file__).resolve().parents[3]
CLUSTER = REPO / "cluster"
KUBERAY = CLUSTER / "kuberay"
# shared/ sits beside the repository checkout; it is not part of the repository.
CRDS = REPO.parent / "shared" / "schemas" / "kuberay-v1.7.0"
LAUNCHERS = ["aws.yaml", "gcp.yaml"]
YAML_FILES = sorted(CLUSTER.rglob("*.yaml"))
TEXT_FILES = sorted(p for p in CLUSTER.rglob("*") if p.is_file())

RAY_AND_MLFLOW_PORTS = {8265, 10001, 6379, 5000}  # dashboard, client, GCS, MLflow
WORLD = ("0.0.0.0/0", "::/0")
PRIVATE_NETWORKS = [ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")]


def load_all(path: Path) -> list:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def load(path: Path):
    (doc,) = load_all(path)
    return doc


def ray_resource(name: str) -> dict:
    """The RayCluster or RayJob of a KubeRay manifest (raycluster.yaml also holds its ServiceAccount)."""
    (doc,) = [doc for doc in load_all(KUBERAY / name) if doc["apiVersion"].startswith("ray.io/")]
    return doc


def walk(node, path=()):
    """Every (path, node) of a parsed YAML document, the document itself first."""
    yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from walk(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from walk(value, (*path, i))


def where(path) -> str:
    return "/".join(map(str, path)) or "<root>"


# ---------------------------------------------------------------------------------------------
# Ray cluster launcher configs


@cache
def ray_schema() -> dict:
    # The installed Ray's schema file, found without importing Ray.
    (ray_dir,) = importlib.util.find_spec("ray").submodule_search_locations
    return json.loads((Path(ray_dir) / "autoscaler" / "ray-schema.json").read_text())


@pytest.mark.parametrize("name", LAUNCHERS)
def test_launcher_config_validates_against_rays_schema(name):
    errors = [f"{where(e.absolute_path)}: {e.message}" for e in jsonschema.Draft7Validator(ray_schema()).iter_errors(load(CLUSTER / name))]
    assert not errors, errors


@pytest.mark.parametrize("name", LAUNCHERS)
def test_launcher_config_passes_rays_own_checks(name):
    # What `ray up` runs before it calls the cloud: defaults filled in, then Ray's validation.
    from ray.autoscaler._private.util import prepare_config, validate_config

    validate_config(prepare_config(load(CLUSTER / name)))


@pytest.mark.parametrize("name", LAUNCHERS)
def test_launcher_head_does_no_work_and_gpu_workers_autoscale_from_zero(name):
    config = load(CLUSTER / name)
    types = config["available_node_types"]
    assert types[config["head_node_type"]]["resources"] == {"CPU": 0}
    workers = {key: spec for key, spec in types.items() if key != config["head_node_type"]}
    assert workers
    for key, spec in workers.items():
        assert spec["min_workers"] == 0, key
        assert 1 <= spec["max_workers"] <= config["max_workers"], key
        assert spec["resources"].get("GPU", 0) >= 1, key
    assert config["idle_timeout_minutes"] > 0


def test_aws_offers_spot_workers():
    types = load(CLUSTER / "aws.yaml")["available_node_types"].values()
    assert any(t["node_config"].get("InstanceMarketOptions") == {"MarketType": "spot"} for t in types)


def test_gcp_offers_spot_workers():
    types = load(CLUSTER / "gcp.yaml")["available_node_types"].values()
    assert any(t["node_config"].get("scheduling", {}).get("provisioningModel") == "SPOT" for t in types)


@pytest.mark.parametrize("name", LAUNCHERS)
def test_launcher_turns_token_auth_on_with_the_token_from_outside(name):
    config = load(CLUSTER / name)
    # Every Ray process runs in the container, which gets the mode from `docker run`.
    assert "--env RAY_AUTH_MODE=token" in config["docker"]["run_options"]
    # The token is the file `ray get-auth-token --generate` wrote on the user's machine.
    assert config["file_mounts"]["~/.ray/auth_token"] == "~/.ray/auth_token"
    commands = " ".join(config["head_start_ray_commands"] + config["worker_start_ray_commands"])
    assert "RAY_AUTH_MODE=disabled" not in commands and "RAY_AUTH_TOKEN=" not in commands


def test_aws_node_types_bring_their_own_security_group():
    # Without SecurityGroupIds, Ray creates a group whose SSH rule admits 0.0.0.0/0.
    for key, spec in load(CLUSTER / "aws.yaml")["available_node_types"].items():
        assert spec["node_config"].get("SecurityGroupIds"), key


def test_gcp_node_types_use_their_own_subnet():
    # Without networkInterfaces, Ray picks a subnet of the project's default network, whose
    # default-allow-ssh rule admits 0.0.0.0/0.
    for key, spec in load(CLUSTER / "gcp.yaml")["available_node_types"].items():
        assert spec["node_config"].get("networkInterfaces"), key


# ---------------------------------------------------------------------------------------------
# KubeRay manifests against the CRDs, unknown fields rejected


def strict(schema: dict) -> dict:
    """A copy of an OpenAPI v3 schema in which every object with declared properties rejects
    other keys, unless it says it keeps unknown fields (the CRDs alone accept anything)."""
    out = dict(schema)
    if "properties" in out:
        out["properties"] = {name: strict(sub) for name, sub in out["properties"].items()}
        if "additionalProperties" not in out and not out.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
    for key in ("items", "additionalProperties", "not"):
        if isinstance(out.get(key), dict):
            out[key] = strict(out[key])
    for key in ("allOf", "anyOf", "oneOf"):
        if key in out:
            out[key] = [strict(sub) for sub in out[key]]
    return out


@cache
def crd_validator(kind: str) -> jsonschema.Draft7Validator:
    path = CRDS / f"ray.io_{kind.lower()}s.yaml"
    if not path.is_file():
        pytest.skip(f"KubeRay CRD schemas not found at {CRDS} (shared/ beside the repository checkout)")
    crd = yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    return jsonschema.Draft7Validator(strict(version["schema"]["openAPIV3Schema"]))


def crd_errors(doc: dict) -> list[str]:
    return [f"{where(e.absolute_path)}: {e.message}" for e in crd_validator(doc["kind"]).iter_errors(doc)]


@pytest.mark.parametrize("name", ["raycluster.yaml", "rayjob.yaml"])
def test_kuberay_manifest_validates_against_the_crd(name):
    doc = ray_resource(name)
    assert doc["apiVersion"] == "ray.io/v1"
    assert not crd_errors(doc), crd_errors(doc)


@pytest.mark.parametrize(
    "path, misspelled",
    [
        (("spec", "headGroupSpec"), ("rayStartParams", "rayStartParam")),
        (("spec", "workerGroupSpecs", 0, "template", "spec", "containers", 0), ("env", "envs")),
        (("spec",), ("enableInTreeAutoscaling", "enableInTreeAutoScaling")),
    ],
)
def test_strict_crd_schema_rejects_a_misspelled_field(path, misspelled):
    doc = ray_resource("raycluster.yaml")
    node = doc
    for key in path:
        node = node[key]
    right, wrong = misspelled
    node[wrong] = node.pop(right)
    assert any(repr(wrong) in error for error in crd_errors(doc))


def test_raycluster_is_a_cpu0_head_with_autoscaled_gpu_workers_and_token_auth():
    spec = ray_resource("raycluster.yaml")["spec"]
    assert spec["enableInTreeAutoscaling"] is True
    assert spec["authOptions"] == {"mode": "token", "secretName": "fake2real-ray-auth"}
    head = spec["headGroupSpec"]
    assert head["rayStartParams"]["num-cpus"] == "0"
    assert head.get("serviceType", "ClusterIP") == "ClusterIP"
    for group in spec["workerGroupSpecs"]:
        assert group["minReplicas"] == 0 and group["maxReplicas"] >= 1, group["groupName"]
        (container,) = group["template"]["spec"]["containers"]
        assert int(container["resources"]["limits"]["nvidia.com/gpu"]) >= 1, group["groupName"]


def test_rayjob_runs_on_the_raycluster_spec_and_cleans_up():
    job = ray_resource("rayjob.yaml")["spec"]
    assert job["rayClusterSpec"] == ray_resource("raycluster.yaml")["spec"]
    assert job["shutdownAfterJobFinishes"] is True
    assert job["ttlSecondsAfterFinished"] > 0


def rayjob_argv() -> list[str]:
    return shlex.split(ray_resource("rayjob.yaml")["spec"]["entrypoint"])


def test_rayjob_entrypoint_is_a_gpu_sweep_with_an_existing_preset():
    argv = rayjob_argv()
    assert argv[:2] == ["python", "jobs/sweep.py"]
    assert (REPO / argv[1]).is_file()
    args = cli.parse("sweep", argv[2:])
    assert args.preset in PRESETS
    config = cli.load(args)  # the overrides name real config keys
    assert config.train.use_gpu
    assert config.output_dir.startswith("s3://"), "the RayJob's cluster and its disks are deleted"


def gpu_workers():
    """(where, CPUs, GPUs) of every GPU worker type or group under cluster/."""
    for name in LAUNCHERS:
        config = load(CLUSTER / name)
        for key, spec in config["available_node_types"].items():
            if key != config["head_node_type"]:
                yield f"{name}: {key}", spec["resources"]["CPU"], spec["resources"]["GPU"]
    for group in ray_resource("raycluster.yaml")["spec"]["workerGroupSpecs"]:
        (container,) = group["template"]["spec"]["containers"]
        limits = container["resources"]["limits"]
        yield f"raycluster.yaml: {group['groupName']}", float(limits["cpu"]), int(limits["nvidia.com/gpu"])


def test_gpu_workers_fit_the_sweeps_trainers():
    # A trial's trainer takes cpus_per_worker CPUs and one GPU per worker; its driver a fraction of a
    # CPU more, and the head has none to give.
    config = cli.load(cli.parse("sweep", rayjob_argv()[2:]))
    for at, cpus, gpus in gpu_workers():
        assert cpus / gpus > config.train.cpus_per_worker, at


def test_mlflow_server_is_a_deployment_behind_a_clusterip_service():
    docs = {doc["kind"]: doc for doc in load_all(KUBERAY / "mlflow.yaml")}
    assert set(docs) == {"ServiceAccount", "Deployment", "Service"}
    assert docs["Deployment"]["apiVersion"] == "apps/v1" and docs["Service"]["apiVersion"] == "v1"
    assert docs["Service"]["spec"]["type"] == "ClusterIP"
    (container,) = docs["Deployment"]["spec"]["template"]["spec"]["containers"]
    command = container["command"] + container["args"]
    assert command[:2] == ["mlflow", "server"]
    options = dict(zip(command[2::2], command[3::2]))
    assert options["--app-name"] == "basic-auth" and options["--port"] == "5000"
    assert options["--backend-store-uri"] == "$(MLFLOW_BACKEND_STORE_URI)"
    assert options["--artifacts-destination"].startswith("s3://")
    env = {e["name"]: e for e in container["env"]}
    for name in ("MLFLOW_BACKEND_STORE_URI", "MLFLOW_AUTH_ADMIN_PASSWORD", "MLFLOW_FLASK_SERVER_SECRET_KEY"):
        assert "secretKeyRef" in env[name]["valueFrom"], name
    selector = docs["Service"]["spec"]["selector"]
    assert selector.items() <= docs["Deployment"]["spec"]["template"]["metadata"]["labels"].items()


# ---------------------------------------------------------------------------------------------
# Nothing opens Ray's or MLflow's ports to the world


def _ports(first, last) -> set[int] | None:
    """The ports from first to last; None (all of them) when first is missing or -1."""
    return None if first in (None, -1) else set(range(int(first), int(last) + 1))


def _firewall_ports(specs: list | None) -> set[int] | None:
    """The ports of a GCP firewall `allowed` entry ("22", "8000-9000"); None when it lists none."""
    if not specs:
        return None
    ranges = [str(spec).partition("-") for spec in specs]
    return set().union(*(_ports(first, last or first) for first, _, last in ranges))


def _public(cidr: str) -> bool:
    """Outside the private ranges (RFC 1918, IPv6 ULA) that a VPC's own traffic comes from."""
    try:
        network = ipaddress.ip_network(cidr, strict=False)
    except ValueError:  # a placeholder or a variable: assume the worst
        return True
    return not any(network.version == p.version and network.subnet_of(p) for p in PRIVATE_NETWORKS)


def _rule_exposure(sources: list[str], ports: set[int] | None) -> str | None:
    public = [c for c in sources if _public(c)]
    if public and (ports is None or ports & RAY_AND_MLFLOW_PORTS):
        return f"admits {public} to {'all ports' if ports is None else sorted(ports & RAY_AND_MLFLOW_PORTS)}"
    return None


def exposures(doc) -> list[str]:
    """How one parsed YAML document opens ports to the world: world CIDRs anywhere, Services of type
    LoadBalancer/NodePort, Ingresses, host ports and host networking, and security-group or
    firewall rules that admit public addresses to Ray's or MLflow's ports (or to every port)."""
    found = []
    for path, node in walk(doc):
        at = where(path)
        if isinstance(node, str) and any(world in node for world in WORLD):
            found.append(f"{at}: world CIDR in {node!r}")
        if not isinstance(node, dict):
            continue
        if node.get("kind") == "Ingress" or node.get("enableIngress") is True:
            found.append(f"{at}: Ingress")
        service = node.get("spec", {}) if node.get("kind") == "Service" or path[-1:] == ("headService",) else {}
        for service_type in (service.get("type"), node.get("serviceType")):
            if service_type in ("LoadBalancer", "NodePort"):
                found.append(f"{at}: Service of type {service_type}")
        if service.get("externalIPs"):
            found.append(f"{at}: Service with externalIPs")
        if "hostPort" in node:
            found.append(f"{at}: hostPort {node['hostPort']}")
        if node.get("hostNetwork") is True:
            found.append(f"{at}: hostNetwork")
        if "IpProtocol" in node:  # an AWS security-group rule
            sources = [r.get("CidrIp", "") for r in node.get("IpRanges", [])]
            sources += [r.get("CidrIpv6", "") for r in node.get("Ipv6Ranges", [])]
            ports = None if str(node["IpProtocol"]) == "-1" else _ports(node.get("FromPort"), node.get("ToPort"))
            if problem := _rule_exposure(sources, ports):
                found.append(f"{at}: security-group rule {problem}")
        if "sourceRanges" in node:  # a GCP firewall rule
            for allowed in node.get("allowed", []):
                if problem := _rule_exposure(node["sourceRanges"], _firewall_ports(allowed.get("ports"))):
                    found.append(f"{at}: firewall rule {problem}")
    return found


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: str(p.relative_to(CLUSTER)))
def test_no_cluster_file_opens_ports_to_the_world(path):
    problems = [problem for doc in load_all(path) for problem in exposures(doc)]
    assert not problems, problems


EXPOSED = {
    "LoadBalancer Service on 8265": {"apiVersion": "v1", "kind": "Service", "spec": {"type": "LoadBalancer", "ports": [{"port": 8265}]}},
    "NodePort head service": {"headGroupSpec": {"serviceType": "NodePort"}},
    "KubeRay head Service override": {"headService": {"spec": {"type": "LoadBalancer"}}},
    "Ingress": {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "spec": {}},
    "KubeRay ingress": {"headGroupSpec": {"enableIngress": True}},
    "hostPort": {"containers": [{"ports": [{"containerPort": 10001, "hostPort": 10001}]}]},
    "security group, 0.0.0.0/0 on 6379": {
        "security_group": {"IpPermissions": [{"IpProtocol": "tcp", "FromPort": 6379, "ToPort": 6379, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]}
    },
    "security group, public CIDR on the dashboard": {
        "IpPermissions": [{"IpProtocol": "tcp", "FromPort": 8000, "ToPort": 9000, "IpRanges": [{"CidrIp": "203.0.113.0/24"}]}]
    },
    "security group, public CIDR on every port": {"IpPermissions": [{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "198.51.100.7/32"}]}]},
    "firewall, public CIDR on MLflow": {"sourceRanges": ["203.0.113.0/24"], "allowed": [{"IPProtocol": "tcp", "ports": ["22", "5000"]}]},
    "firewall, ::/0 on SSH": {"sourceRanges": ["::/0"], "allowed": [{"IPProtocol": "tcp", "ports": ["22"]}]},
}


@pytest.mark.parametrize("snippet", EXPOSED.values(), ids=EXPOSED.keys())
def test_exposure_scanner_catches(snippet):
    assert exposures(snippet)


CLOSED = {
    "ClusterIP Service": {"kind": "Service", "spec": {"type": "ClusterIP", "ports": [{"port": 8265}]}},
    "SSH from an admin CIDR": {"IpPermissions": [{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "203.0.113.7/32"}]}]},
    "intra-VPC firewall": {"sourceRanges": ["10.42.0.0/20"], "allowed": [{"IPProtocol": "tcp"}]},
    "bind address inside a pod": {"args": ["--host", "0.0.0.0", "--port", "5000"]},
}


@pytest.mark.parametrize("snippet", CLOSED.values(), ids=CLOSED.keys())
def test_exposure_scanner_passes(snippet):
    assert not exposures(snippet)


# ---------------------------------------------------------------------------------------------
# No secret written into a file: only environment references and secretKeyRefs


SENSITIVE = re.compile(r"password|passwd|secret|token|access[_-]?key|private[_-]?key|credential", re.I)
# Names of things rather than secrets: secretName, RAY_AUTH_TOKEN_PATH, AWS_ACCESS_KEY_ID, ...
NAMES_A_THING = re.compile(r"(name|path|file|mode|ref|id)$", re.I)
ASSIGNMENT = re.compile(r"""(?<![\w-])([A-Za-z_][\w-]*)=("[^"]*"|'[^']*'|[^\s;&|)]+)""")
FLAG = re.compile(r"""(?<![\w-])--([\w-]+)[= ]("[^"]*"|'[^']*'|[^\s;&|)]+)""")
URI_PASSWORD = re.compile(r"[a-z][\w+.-]*://[^\s:/@]+:([^\s@/]+)@")
LITERAL_KEYS = re.compile(r"AKIA[0-9A-Z]{16}|-----BEGIN [A-Z ]*PRIVATE KEY-----")


def _literal(value) -> bool:
    """A written-down value: not empty and not a reference ($VAR, ${VAR}, $(command))."""
    text = str(value).strip().strip("\"'")
    return bool(text) and not text.startswith("$")


def _secret_name(name) -> bool:
    name = str(name)  # a path (a file_mounts key) names a file, not a value
    return bool(SENSITIVE.search(name)) and not NAMES_A_THING.search(name) and "/" not in name


def text_secrets(text: str) -> list[str]:
    found = [f"{n}={v}" for n, v in ASSIGNMENT.findall(text) if _secret_name(n) and _literal(v)]
    found += [f"--{n} {v}" for n, v in FLAG.findall(text) if _secret_name(n) and _literal(v)]
    found += [f"password {p!r} in a URI" for p in URI_PASSWORD.findall(text) if _literal(p)]
    return found + LITERAL_KEYS.findall(text)


def yaml_secrets(doc) -> list[str]:
    found = []
    for path, node in walk(doc):
        if isinstance(node, str):
            found += [f"{where(path)}: {s}" for s in text_secrets(node)]
        elif isinstance(node, dict):
            pairs = [(k, v) for k, v in node.items() if isinstance(v, (str, int)) and not isinstance(v, bool)]
            if "name" in node and "value" in node:  # a Kubernetes env entry
                pairs.append((node["name"], node["value"]))
            found += [f"{where(path)}: {k} has a literal value" for k, v in pairs if _secret_name(k) and _literal(v)]
    return found


@pytest.mark.parametrize("path", TEXT_FILES, ids=lambda p: str(p.relative_to(CLUSTER)))
def test_no_secret_is_written_down(path):
    problems = text_secrets(path.read_text())
    if path.suffix == ".yaml":
        problems += [problem for doc in load_all(path) for problem in yaml_secrets(doc)]
    assert not problems, problems


LEAKS = {
    "env value": {"env": [{"name": "MLFLOW_TRACKING_PASSWORD", "value": "hunter2"}]},
    "mapping key": {"aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG"},
    "token in a docker option": {"docker": {"run_options": ["--env RAY_AUTH_TOKEN=3f9a1c"]}},
    "password flag": {"command": "mlflow server --admin-password letmein"},
    "database URI": {"args": ["--backend-store-uri", "postgresql://mlflow:hunter2@db:5432/mlflow"]},
    "AWS key id": {"note": "AKIAIOSFODNN7EXAMPLE"},
}


@pytest.mark.parametrize("snippet", LEAKS.values(), ids=LEAKS.keys())
def test_secret_scanner_catches(snippet):
    assert yaml_secrets(snippet)


def test_secret_scanner_passes_references():
    doc = {
        "env": [
            {"name": "MLFLOW_TRACKING_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "fake2real-mlflow", "key": "admin-password"}}},
            {"name": "RAY_AUTH_MODE", "value": "token"},
        ],
        "authOptions": {"mode": "token", "secretName": "fake2real-ray-auth"},
        "commands": ['export MLFLOW_TRACKING_PASSWORD="$MLFLOW_ADMIN_PASSWORD"', "--from-literal=auth_token=$(cat ~/.ray/auth_token)"],
        "uri": "postgresql://mlflow:${PGPASSWORD}@db:5432/mlflow",
    }
    assert not yaml_secrets(doc)


# ---------------------------------------------------------------------------------------------
# The image and what ships with a job


def images(doc) -> set[str]:
    return {node for path, node in walk(doc) if path[-1:] == ("image",) and isinstance(node, str)}


def test_every_node_and_the_mlflow_server_run_the_one_image():
    found = set().union(*(images(doc) for path in YAML_FILES for doc in load_all(path)))
    assert len(found) == 1, found


def test_image_is_the_ray_gpu_image_of_the_installed_ray_and_python():
    base = re.search(r"^FROM (\S+)", (CLUSTER / "Dockerfile").read_text(), re.M).group(1)
    python = f"py{sys.version_info.major}{sys.version_info.minor}"
    assert base == f"rayproject/ray:{importlib.metadata.version('ray')}-{python}-gpu"


def test_docker_build_context_keeps_what_the_dockerfile_copies_and_nothing_else():
    ignore = [line for line in (CLUSTER / "Dockerfile.dockerignore").read_text().splitlines() if line and not line.startswith("#")]
    assert ignore[0] == "**"  # everything out (.venv/, outputs/, mlflow.db, ...) unless let back in
    copies = [line.split()[1:-1] for line in (CLUSTER / "Dockerfile").read_text().splitlines() if line.startswith("COPY ")]
    copied = [src for sources in copies for src in sources if not src.startswith("--")]
    assert copied and all(f"!{src}" in ignore for src in copied), copied


def test_runtime_env_leaves_local_state_behind():
    excludes = load(CLUSTER / "runtime_env.yaml")["excludes"]
    assert {".venv/", "outputs/", "mlflow.db", "mlruns/", "mlartifacts/"} <= set(excludes)
