"""Least privilege in the KubeRay manifests, checked offline by parsing them: the Ray pods log to
MLflow as the job user and never see the admin's credentials, reach object storage by workload
identity instead of static keys, and only the autoscaler gets a Kubernetes API token; the MLflow
server keeps its users in the database named by a mounted ini file; NetworkPolicies admit only the
Ray pods to MLflow and only the cluster's own pods to the cluster. Each scanner is tested on bad
snippets too, so that a pass means something."""

from __future__ import annotations

import configparser
import re
import shlex
from pathlib import Path, PurePosixPath

import pytest
import yaml

from test_cluster_files import walk, where

REPO = Path(__file__).resolve().parents[3]
KUBERAY = REPO / "cluster" / "kuberay"
RAY_MANIFESTS = ["raycluster.yaml", "rayjob.yaml"]

RAY_SA = "fake2real-ray"
MLFLOW_SA = "fake2real-mlflow"
IRSA = "eks.amazonaws.com/role-arn"
GKE_WI = "iam.gke.io/gcp-service-account"
JOB_SECRET = "fake2real-mlflow-job"
AUTH_SECRET = "fake2real-mlflow-auth"
# Secrets a Ray pod must not read whole: the admin's password, and the auth ini (database password).
ADMIN_SECRETS = {"fake2real-mlflow", AUTH_SECRET}
STATIC_KEY_ENV = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "GOOGLE_APPLICATION_CREDENTIALS"}
STATIC_KEY_KEYS = {"access-key-id", "secret-access-key"}


def load_all(name: str) -> list[dict]:
    return [doc for doc in yaml.safe_load_all((KUBERAY / name).read_text()) if doc is not None]


def one(name: str, kind: str) -> dict:
    (doc,) = [doc for doc in load_all(name) if doc["kind"] == kind]
    return doc


def cluster_spec(name: str) -> dict:
    doc = one(name, "RayCluster" if name == "raycluster.yaml" else "RayJob")
    return doc["spec"] if doc["kind"] == "RayCluster" else doc["spec"]["rayClusterSpec"]


def ray_templates():
    """(where, node type, group, pod template) of every Ray pod of both KubeRay manifests."""
    for name in RAY_MANIFESTS:
        spec = cluster_spec(name)
        yield f"{name}: head", "head", "headgroup", spec["headGroupSpec"]["template"]
        for group in spec["workerGroupSpecs"]:
            yield f"{name}: {group['groupName']}", "worker", group["groupName"], group["template"]


RAY_PODS = list(ray_templates())
RAY_POD_IDS = [at for at, *_ in RAY_PODS]


def env(container: dict) -> dict[str, dict]:
    return {entry["name"]: entry for entry in container.get("env", [])}


def secret_ref(entry: dict) -> tuple[str, str] | None:
    ref = entry.get("valueFrom", {}).get("secretKeyRef")
    return (ref["name"], ref["key"]) if ref else None


# ---------------------------------------------------------------------------------------------
# Scanners: what a pod spec can read that it should not


def whole_secrets(node) -> list[tuple[str, str]]:
    """(where, Secret name) of every Secret read whole: envFrom, secret and projected volumes."""
    found = []
    for path, item in walk(node):
        if not isinstance(item, dict):
            continue
        if path[-2:-1] == ("envFrom",) and "secretRef" in item:
            found.append((where(path), item["secretRef"]["name"]))
        if "secret" in item and isinstance(item["secret"], dict) and "secretName" in item["secret"]:
            found.append((where(path), item["secret"]["secretName"]))
        if path[-2:-1] == ("sources",) and "secret" in item:  # a projected volume's source
            found.append((where(path), item["secret"]["name"]))
    return found


def admin_credential_refs(node) -> list[str]:
    """Where a pod spec can get at MLflow's admin: the admin-password key of any Secret, the Secrets
    that hold the admin's or the user store's credentials read whole, or the admin's username."""
    found = []
    for path, item in walk(node):
        if not isinstance(item, dict):
            continue
        ref = item.get("secretKeyRef") or item.get("configMapKeyRef")
        if ref and ref.get("key") == "admin-password":
            found.append(f"{where(path)}: {ref['name']}/admin-password")
        if item.get("name") == "MLFLOW_TRACKING_USERNAME" and item.get("value") == "admin":
            found.append(f"{where(path)}: logs in as admin")
    found += [f"{at}: all of Secret {name}" for at, name in whole_secrets(node) if name in ADMIN_SECRETS]
    return found


def static_key_refs(node) -> list[str]:
    """Where a pod spec gets static cloud-storage keys: the keys' environment variables, Secret keys
    named like access keys, or a whole Secret in the environment (it may hold any of them)."""
    found = []
    for path, item in walk(node):
        if not isinstance(item, dict):
            continue
        if item.get("name") in STATIC_KEY_ENV and ("value" in item or "valueFrom" in item):
            found.append(f"{where(path)}: {item['name']}")
        ref = item.get("secretKeyRef")
        if ref and ref.get("key") in STATIC_KEY_KEYS:
            found.append(f"{where(path)}: {ref['name']}/{ref['key']}")
        if path[-2:-1] == ("envFrom",) and "secretRef" in item:
            found.append(f"{where(path)}: all of Secret {item['secretRef']['name']} in the environment")
    return found


def pod_spec(*variables: dict) -> dict:
    return {"containers": [{"name": "c", "env": list(variables)}]}


def from_secret(name: str, key: str, **options) -> dict:
    return {"valueFrom": {"secretKeyRef": {"name": name, "key": key, **options}}}


ADMIN_LEAKS = {
    "admin password by key": pod_spec({"name": "MLFLOW_TRACKING_PASSWORD", **from_secret("fake2real-mlflow", "admin-password")}),
    "admin password from another Secret": pod_spec({"name": "P", **from_secret("copy", "admin-password")}),
    "admin username": pod_spec({"name": "MLFLOW_TRACKING_USERNAME", "value": "admin"}),
    "the admin's Secret in envFrom": {"containers": [{"name": "c", "envFrom": [{"secretRef": {"name": "fake2real-mlflow"}}]}]},
    "the auth ini as a volume": {"volumes": [{"name": "v", "secret": {"secretName": AUTH_SECRET}}]},
    "the admin's Secret projected": {"volumes": [{"name": "v", "projected": {"sources": [{"secret": {"name": "fake2real-mlflow"}}]}}]},
}


@pytest.mark.parametrize("snippet", ADMIN_LEAKS.values(), ids=ADMIN_LEAKS.keys())
def test_admin_scanner_catches(snippet):
    assert admin_credential_refs(snippet)


STATIC_KEYS = {
    "key id from a Secret": pod_spec({"name": "AWS_ACCESS_KEY_ID", **from_secret("fake2real-s3", "access-key-id", optional=True)}),
    "secret key under another name": pod_spec({"name": "S3_SECRET", **from_secret("fake2real-s3", "secret-access-key")}),
    "session token": pod_spec({"name": "AWS_SESSION_TOKEN", **from_secret("sts", "token")}),
    "service-account key file": pod_spec({"name": "GOOGLE_APPLICATION_CREDENTIALS", "value": "/var/secrets/key.json"}),
    "a whole Secret in the environment": {"containers": [{"name": "c", "envFrom": [{"secretRef": {"name": "fake2real-s3"}}]}]},
}


@pytest.mark.parametrize("snippet", STATIC_KEYS.values(), ids=STATIC_KEYS.keys())
def test_static_key_scanner_catches(snippet):
    assert static_key_refs(snippet)


def test_scanners_pass_the_job_user_and_a_region():
    spec = pod_spec(
        {"name": "MLFLOW_TRACKING_USERNAME", **from_secret(JOB_SECRET, "username")},
        {"name": "MLFLOW_TRACKING_PASSWORD", **from_secret(JOB_SECRET, "password")},
        {"name": "AWS_REGION", **from_secret("fake2real-s3", "region", optional=True)},
    )
    assert not admin_credential_refs(spec) and not static_key_refs(spec)


# ---------------------------------------------------------------------------------------------
# The Ray pods


@pytest.mark.parametrize("at, node_type, group, template", RAY_PODS, ids=RAY_POD_IDS)
def test_ray_pod_never_sees_the_mlflow_admin(at, node_type, group, template):
    assert not admin_credential_refs(template), admin_credential_refs(template)


@pytest.mark.parametrize("at, node_type, group, template", RAY_PODS, ids=RAY_POD_IDS)
def test_ray_pod_has_no_static_storage_keys(at, node_type, group, template):
    assert not static_key_refs(template), static_key_refs(template)


@pytest.mark.parametrize("at, node_type, group, template", RAY_PODS, ids=RAY_POD_IDS)
def test_ray_pod_logs_to_mlflow_as_the_job_user(at, node_type, group, template):
    for container in template["spec"]["containers"]:
        variables = env(container)
        assert variables["MLFLOW_TRACKING_URI"]["value"] == "http://fake2real-mlflow:5000"
        assert secret_ref(variables["MLFLOW_TRACKING_USERNAME"]) == (JOB_SECRET, "username")
        assert secret_ref(variables["MLFLOW_TRACKING_PASSWORD"]) == (JOB_SECRET, "password")


def service_account(name: str, manifest: str) -> dict:
    (account,) = [doc for doc in load_all(manifest) if doc["kind"] == "ServiceAccount" and doc["metadata"]["name"] == name]
    assert account["apiVersion"] == "v1"
    return account


def token_mounted(template: dict, account: dict) -> bool:
    """Whether a pod gets a Kubernetes API token: its own setting, else its ServiceAccount's, else yes."""
    setting = template["spec"].get("automountServiceAccountToken")
    return account.get("automountServiceAccountToken", True) if setting is None else setting


@pytest.mark.parametrize("at, node_type, group, template", RAY_PODS, ids=RAY_POD_IDS)
def test_ray_pod_runs_as_the_ray_service_account_with_a_token_only_for_the_autoscaler(at, node_type, group, template):
    assert template["spec"]["serviceAccountName"] == RAY_SA
    # KubeRay binds its autoscaler Role to the head's ServiceAccount; the workers share that
    # account for the bucket and must not get the Role's token.
    assert token_mounted(template, service_account(RAY_SA, "raycluster.yaml")) is (node_type == "head")


@pytest.mark.parametrize("name, manifest", [(RAY_SA, "raycluster.yaml"), (MLFLOW_SA, "mlflow.yaml")])
def test_service_account_has_both_workload_identity_annotations_and_no_default_token(name, manifest):
    account = service_account(name, manifest)
    annotations = account["metadata"]["annotations"]
    assert re.fullmatch(rf"arn:aws:iam::[\w-]+:role/{name}", annotations[IRSA])
    assert re.fullmatch(rf"{name}@[\w-]+\.iam\.gserviceaccount\.com", annotations[GKE_WI])
    assert account["automountServiceAccountToken"] is False


def test_rayjobs_own_apply_hint_creates_just_the_ray_service_account():
    # rayjob.yaml's pods need the ServiceAccount of raycluster.yaml; its header says how to create
    # that alone. The selector must pick exactly it out of raycluster.yaml.
    lines = (KUBERAY / "rayjob.yaml").read_text().splitlines()
    (command,) = [line.lstrip("# ") for line in lines if "kubectl apply" in line and " -l " in line]
    argv = shlex.split(command)
    path, selector = argv[argv.index("-f") + 1], argv[argv.index("-l") + 1]
    key, value = selector.split("=")
    picked = [doc for doc in load_all(Path(path).name) if doc["metadata"].get("labels", {}).get(key) == value]
    assert path == "cluster/kuberay/raycluster.yaml"
    assert [(doc["kind"], doc["metadata"]["name"]) for doc in picked] == [("ServiceAccount", RAY_SA)]


# ---------------------------------------------------------------------------------------------
# The MLflow server


def mlflow_pod() -> dict:
    return one("mlflow.yaml", "Deployment")["spec"]["template"]


def mounted_secret_file(spec: dict, container: dict, file: str) -> tuple[str, str] | None:
    """(Secret name, key) of the file at `file` in a container, when a read-only mount of a Secret
    volume puts it there; None otherwise."""
    volumes = {volume["name"]: volume for volume in spec.get("volumes", [])}
    for mount in container.get("volumeMounts", []):
        secret = volumes.get(mount["name"], {}).get("secret")
        if not secret or not mount.get("readOnly") or "subPath" in mount:
            continue
        try:
            relative = PurePosixPath(file).relative_to(mount["mountPath"])
        except ValueError:
            continue
        items = {item["path"]: item["key"] for item in secret.get("items", [])}
        key = items.get(str(relative)) if items else str(relative)
        if key:
            return secret["secretName"], key
    return None


def test_mlflow_reads_its_user_store_settings_from_the_auth_secret():
    template = mlflow_pod()
    (container,) = template["spec"]["containers"]
    variables = env(container)
    path = variables["MLFLOW_AUTH_CONFIG_PATH"]["value"]
    assert mounted_secret_file(template["spec"], container, path) == (AUTH_SECRET, "basic_auth.ini")
    assert secret_ref(variables["MLFLOW_AUTH_ADMIN_PASSWORD"]) == ("fake2real-mlflow", "admin-password")
    assert secret_ref(variables["MLFLOW_FLASK_SERVER_SECRET_KEY"]) == ("fake2real-mlflow", "flask-secret-key")


BAD_MOUNTS = {
    "path outside the mount": ("/etc/elsewhere/basic_auth.ini", {}),
    "writable mount": ("/etc/mlflow-auth/basic_auth.ini", {"readOnly": False}),
    "another key of the Secret": ("/etc/mlflow-auth/other.ini", {}),
}


@pytest.mark.parametrize("file, change", BAD_MOUNTS.values(), ids=BAD_MOUNTS.keys())
def test_mounted_secret_file_rejects(file, change):
    items = [{"key": "basic_auth.ini", "path": "basic_auth.ini"}]
    spec = {"volumes": [{"name": "auth", "secret": {"secretName": AUTH_SECRET, "items": items}}]}
    mount = {"name": "auth", "mountPath": "/etc/mlflow-auth", "readOnly": True}
    good = mounted_secret_file(spec, {"volumeMounts": [mount]}, "/etc/mlflow-auth/basic_auth.ini")
    assert good == (AUTH_SECRET, "basic_auth.ini")
    assert mounted_secret_file(spec, {"volumeMounts": [{**mount, **change}]}, file) is None


def documented_auth_ini() -> str:
    """The basic_auth.ini that mlflow.yaml's header shows: the indented comment lines from [mlflow]."""
    lines = (KUBERAY / "mlflow.yaml").read_text().splitlines()
    start = lines.index("#   [mlflow]")
    block = []
    for line in lines[start:]:
        if not line.startswith("#   "):
            break
        block.append(line.removeprefix("#   "))
    return "\n".join(block) + "\n"


def test_the_documented_auth_ini_puts_the_users_in_postgres(tmp_path, monkeypatch):
    # What the Secret is to hold, read by MLflow's own reader as the server would read it.
    from mlflow.server.auth.config import read_auth_config

    ini = tmp_path / "basic_auth.ini"
    ini.write_text(documented_auth_ini())
    monkeypatch.setenv("MLFLOW_AUTH_CONFIG_PATH", str(ini))
    monkeypatch.delenv("MLFLOW_AUTH_ADMIN_USERNAME", raising=False)
    config = read_auth_config()
    assert config.database_uri.startswith("postgresql://")
    assert config.default_permission == "READ" and config.admin_username == "admin"
    assert config.authorization_function == "mlflow.server.auth:authenticate_request_basic_auth"
    # The password comes from the pod's environment (the fake2real-mlflow Secret), not this file.
    parser = configparser.ConfigParser()
    parser.read_string(documented_auth_ini())
    assert "admin_password" not in parser["mlflow"]


def test_mlflow_runs_as_its_service_account_without_static_keys():
    template = mlflow_pod()
    assert template["spec"]["serviceAccountName"] == MLFLOW_SA
    assert not static_key_refs(template), static_key_refs(template)
    assert token_mounted(template, service_account(MLFLOW_SA, "mlflow.yaml")) is False


def test_mlflow_is_restarted_when_it_stops_answering_and_served_only_when_ready():
    (container,) = mlflow_pod()["spec"]["containers"]
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/health", "port": "http"}, probe
    assert {"containerPort": 5000, "name": "http"} in container["ports"]
    assert "lost on restart" not in (KUBERAY / "mlflow.yaml").read_text()


# ---------------------------------------------------------------------------------------------
# NetworkPolicies


def policies() -> dict[str, dict]:
    docs = load_all("networkpolicy.yaml")
    assert all(doc["apiVersion"] == "networking.k8s.io/v1" and doc["kind"] == "NetworkPolicy" for doc in docs)
    return {doc["metadata"]["name"]: doc for doc in docs}


def selects(selector: dict, labels: dict) -> bool:
    """Whether a Kubernetes label selector selects a pod with these labels (an empty one selects all)."""
    if any(labels.get(key) != value for key, value in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, values = expression["key"], expression.get("values", [])
        matched = {
            "In": key in labels and labels[key] in values,
            "NotIn": labels.get(key) not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[expression["operator"]]
        if not matched:
            return False
    return True


def kuberay_pod_labels(template: dict, cluster: str, node_type: str, group: str) -> dict:
    """The labels KubeRay gives a Ray pod (v1.7.0, common/pod.go labelPod): its own, then the
    template's, which cannot override the node type, the group or the cluster."""
    labels = {
        "ray.io/is-ray-node": "yes",
        "ray.io/cluster": cluster,
        "ray.io/node-type": node_type,
        "ray.io/group": group,
        "ray.io/identifier": f"{cluster}-{node_type}",
        "app.kubernetes.io/name": "kuberay",
        "app.kubernetes.io/created-by": "kuberay-operator",
    }
    fixed = {"ray.io/cluster", "ray.io/node-type", "ray.io/group"}
    labels |= {key: value for key, value in template.get("metadata", {}).get("labels", {}).items() if key not in fixed}
    return labels


# A RayJob's cluster is named after the job with a random suffix (utils.GenerateRayClusterName).
CLUSTER_NAMES = {"raycluster.yaml": "fake2real", "rayjob.yaml": "fake2real-sweep-x7k2q"}
RAY_POD_LABELS = {
    at: kuberay_pod_labels(template, CLUSTER_NAMES[at.split(":")[0]], node_type, group)
    for at, node_type, group, template in RAY_PODS
}
LONG_LIVED = {at: labels for at, labels in RAY_POD_LABELS.items() if at.startswith("raycluster.yaml")}
SWEEP = {at: labels for at, labels in RAY_POD_LABELS.items() if at.startswith("rayjob.yaml")}
OTHERS = {
    # KubeRay's default submitter pod of the RayJob (rayjob_controller.go getSubmitterTemplate, plus
    # the Job controller's labels): it only calls its head's dashboard.
    "RayJob submitter": {
        "ray.io/originated-from-cr-name": "fake2real-sweep",
        "ray.io/originated-from-crd": "RayJob",
        "app.kubernetes.io/created-by": "kuberay-operator",
        "job-name": "fake2real-sweep",
        "batch.kubernetes.io/job-name": "fake2real-sweep",
    },
    "another team's Ray head": kuberay_pod_labels({}, "someone-else", "head", "headgroup"),
    "any other pod": {"app": "web"},
}


def mlflow_labels() -> dict:
    return mlflow_pod()["metadata"]["labels"]


def ingress_problems(policy: dict, allowed_peers: list[dict], ports: list[dict] | None) -> list[str]:
    """How a NetworkPolicy admits more to its pods than `allowed_peers` (pod selectors of its own
    namespace) on `ports` (None: every port): no ingress restriction, a rule without sources, an
    address block, another namespace, another selector, other ports."""
    spec = policy["spec"]
    blocks = [(path, node["ipBlock"]) for path, node in walk(spec) if isinstance(node, dict) and "ipBlock" in node]
    problems = [f"{where(path)}: ipBlock {block}" for path, block in blocks]
    if "Ingress" not in spec.get("policyTypes", ["Ingress"]):
        problems.append("does not restrict ingress")
    for i, rule in enumerate(spec.get("ingress", [])):
        if not rule.get("from"):
            problems.append(f"ingress/{i}: admits every source")
        for peer in rule.get("from", []):
            if "namespaceSelector" in peer:
                problems.append(f"ingress/{i}: admits namespaces {peer['namespaceSelector']}")
            if "podSelector" in peer and peer["podSelector"] not in allowed_peers:
                problems.append(f"ingress/{i}: admits pods {peer['podSelector']}")
        if rule.get("ports") != ports:
            problems.append(f"ingress/{i}: ports {rule.get('ports', 'all')}, not {ports or 'all'}")
    return problems


RAY_NODES_OF_FAKE2REAL = {"matchLabels": {"ray.io/is-ray-node": "yes", "app.kubernetes.io/part-of": "fake2real"}}
MLFLOW_PORTS = [{"protocol": "TCP", "port": 5000}]
LONG_LIVED_CLUSTER = {"matchLabels": {"ray.io/cluster": "fake2real"}}


def test_the_policies_guard_mlflow_and_the_long_lived_cluster_and_leave_egress_open():
    found = policies()
    assert set(found) == {"fake2real-mlflow", "fake2real-ray"}
    # Egress stays open: DNS, the bucket, MLflow, and the autoscaler's Kubernetes API.
    assert all(policy["spec"]["policyTypes"] == ["Ingress"] for policy in found.values())
    text = (KUBERAY / "networkpolicy.yaml").read_text()
    assert "kubectl apply -f cluster/kuberay/networkpolicy.yaml" in text and "port-forward" in text


def test_no_policy_admits_an_address_block():
    nodes = [(path, node) for doc in load_all("networkpolicy.yaml") for path, node in walk(doc)]
    blocks = [where(path) for path, node in nodes if isinstance(node, dict) and "ipBlock" in node]
    cidrs = [node for _, node in nodes if isinstance(node, str) and re.search(r"\d/\d|:/\d", node)]
    assert not blocks and not cidrs, (blocks, cidrs)


def test_mlflow_policy_selects_the_mlflow_pods_only():
    selector = policies()["fake2real-mlflow"]["spec"]["podSelector"]
    assert selects(selector, mlflow_labels())
    assert not any(selects(selector, labels) for labels in [*RAY_POD_LABELS.values(), *OTHERS.values()])


def test_mlflow_admits_the_ray_pods_of_both_manifests_on_its_port_and_nothing_else():
    policy = policies()["fake2real-mlflow"]
    problems = ingress_problems(policy, [RAY_NODES_OF_FAKE2REAL], MLFLOW_PORTS)
    assert not problems, problems
    (container,) = mlflow_pod()["spec"]["containers"]
    assert {"containerPort": 5000, "name": "http"} in container["ports"]
    peers = [peer["podSelector"] for rule in policy["spec"]["ingress"] for peer in rule["from"]]
    for at, labels in RAY_POD_LABELS.items():
        assert any(selects(peer, labels) for peer in peers), at
    for at, labels in {**OTHERS, "the MLflow server": mlflow_labels()}.items():
        assert not any(selects(peer, labels) for peer in peers), at


def test_ray_policy_selects_the_long_lived_clusters_pods_only():
    selector = policies()["fake2real-ray"]["spec"]["podSelector"]
    assert all(selects(selector, labels) for labels in LONG_LIVED.values())
    assert not any(selects(selector, labels) for labels in [*SWEEP.values(), *OTHERS.values(), mlflow_labels()])


def test_ray_cluster_admits_its_own_pods_on_every_port_and_nothing_else():
    policy = policies()["fake2real-ray"]
    problems = ingress_problems(policy, [LONG_LIVED_CLUSTER], None)
    assert not problems, problems
    peers = [peer["podSelector"] for rule in policy["spec"]["ingress"] for peer in rule["from"]]
    assert all(any(selects(peer, labels) for peer in peers) for labels in LONG_LIVED.values())
    for at, labels in {**SWEEP, **OTHERS, "the MLflow server": mlflow_labels()}.items():
        assert not any(selects(peer, labels) for peer in peers), at


def _mlflow_policy_with(change) -> dict:
    policy = yaml.safe_load(yaml.safe_dump(policies()["fake2real-mlflow"]))
    change(policy["spec"])
    return policy


LOOSE_POLICIES = {
    "world address block": lambda spec: spec["ingress"][0]["from"].append({"ipBlock": {"cidr": "0.0.0.0/0"}}),
    "private address block": lambda spec: spec["ingress"][0]["from"].append({"ipBlock": {"cidr": "10.0.0.0/8"}}),
    "rule without sources": lambda spec: spec["ingress"].append({"ports": MLFLOW_PORTS}),
    "empty rule": lambda spec: spec["ingress"].append({}),
    "every pod of the namespace": lambda spec: spec["ingress"][0]["from"].append({"podSelector": {}}),
    "every namespace": lambda spec: spec["ingress"][0]["from"][0].update(namespaceSelector={}),
    "another port": lambda spec: spec["ingress"][0]["ports"].append({"protocol": "TCP", "port": 8080}),
    "every port": lambda spec: spec["ingress"][0].pop("ports"),
    "egress only": lambda spec: spec.update(policyTypes=["Egress"]),
}


@pytest.mark.parametrize("change", LOOSE_POLICIES.values(), ids=LOOSE_POLICIES.keys())
def test_ingress_check_catches(change):
    assert ingress_problems(_mlflow_policy_with(change), [RAY_NODES_OF_FAKE2REAL], MLFLOW_PORTS)


@pytest.mark.parametrize(
    "selector, labels, expected",
    [
        ({}, {"a": "1"}, True),
        ({"matchLabels": {"a": "1"}}, {"a": "2"}, False),
        ({"matchExpressions": [{"key": "a", "operator": "Exists"}]}, {"b": "1"}, False),
        ({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]}, {}, True),
        ({"matchExpressions": [{"key": "a", "operator": "In", "values": ["1", "2"]}]}, {"a": "2"}, True),
    ],
)
def test_selects_follows_kubernetes_label_selectors(selector, labels, expected):
    assert selects(selector, labels) is expected
