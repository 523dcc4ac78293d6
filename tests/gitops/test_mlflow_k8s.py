"""Static checks of k8s/mlflow/, the MLflow tracking server as teams run it.

It renders with kustomize, validates against the Kubernetes schemas, passes checkov, names
what churnops.yaml names, and cannot be reached without authentication: the basic-auth app
is on, the one way in from outside is the TLS Ingress, and every Secret key it reads is
documented in docs/setup.md (none is committed).
"""

from __future__ import annotations

import copy
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from churnops import identity as ident
from tests.gitops.test_k8s_checkov import checkov_results
from tests.gitops.test_k8s_manifests import schema_errors
from tests.support.k8s import K8S, one, render, selects

MLFLOW = K8S / "mlflow"
NAME = "churnops-mlflow"
DOCS_SECTION = "## The MLflow tracking server"
SHORT_FLAGS = {"-h": "--host", "-p": "--port", "-w": "--workers"}
# Each inline checkov skip on k8s/mlflow, with its reason beside it.
DOCUMENTED_SKIPS = {"CKV_K8S_35", "CKV_K8S_43"}

Objects = list[dict[str, Any]]


@pytest.fixture(scope="module")
def objects(repo_root: Path) -> Objects:
    return render(repo_root / MLFLOW)


def container(objects: Objects) -> dict[str, Any]:
    (found,) = one(objects, "Deployment", NAME)["spec"]["template"]["spec"]["containers"]
    return found


def flags(container: dict[str, Any]) -> dict[str, str]:
    """The container's command-line flags: `--name=value`, `--name value`, bare `--name`."""
    words = [*container.get("command", []), *container.get("args", [])]
    found = {}
    for index, word in enumerate(words):
        if word.startswith("-"):
            name, equals, value = word.partition("=")
            following = words[index + 1] if index + 1 < len(words) else "-"
            if not equals and not following.startswith("-"):
                value = following
            found[SHORT_FLAGS.get(name, name)] = value
    return found


def env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env", [])}


def exposure_problems(objects: Objects) -> list[str]:
    """Every way the rendered server could be reached without authentication."""
    problems = []
    for deployment in (o for o in objects if o["kind"] == "Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        if pod.get("hostNetwork"):
            problems.append("the pod uses the host's network")
        for server in pod["containers"]:
            given, variables = flags(server), env(server)
            if given.get("--app-name") != "basic-auth":
                problems.append("mlflow server runs without --app-name basic-auth")
            if given.get("--host") != "0.0.0.0":
                problems.append(
                    f"--host is {given.get('--host')!r}, not 0.0.0.0 behind the Service"
                )
            disabled = variables.get("MLFLOW_SERVER_DISABLE_SECURITY_MIDDLEWARE", {}).get("value")
            if "--disable-security-middleware" in given or disabled not in (None, "false"):
                problems.append("the security middleware (Host header checks) is disabled")
            hosts = variables.get("MLFLOW_SERVER_ALLOWED_HOSTS", {}).get("value", "")
            if "*" in hosts.split(",") or "*" in given.get("--allowed-hosts", "").split(","):
                problems.append("every Host header is allowed")
            if any("hostPort" in port for port in server.get("ports", [])):
                problems.append("a container port is bound on the node (hostPort)")
    for service in (o for o in objects if o["kind"] == "Service"):
        spec = service["spec"]
        if spec.get("type", "ClusterIP") != "ClusterIP" or spec.get("externalIPs"):
            problems.append(f"Service {service['metadata']['name']} is {spec.get('type')}")
        if any("nodePort" in port for port in spec["ports"]):
            problems.append(f"Service {service['metadata']['name']} has a nodePort")
    for ingress in (o for o in objects if o["kind"] == "Ingress"):
        secured = {h for tls in ingress["spec"].get("tls", []) for h in tls.get("hosts", [])}
        for rule in ingress["spec"]["rules"]:
            if rule.get("host") not in secured:
                problems.append(f"Ingress host {rule.get('host')!r} is served without TLS")
    return problems


def test_renders_the_server_and_nothing_secret(objects, repo_root):
    kinds = sorted(o["kind"] for o in objects)
    assert kinds == ["Deployment", "Ingress", "NetworkPolicy", "Service", "ServiceAccount"]
    committed = [
        doc.get("kind")
        for path in (repo_root / MLFLOW).glob("*.yaml")
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    ]
    assert "Secret" not in committed
    assert "secretGenerator" not in yaml.safe_load(
        (repo_root / MLFLOW / "kustomization.yaml").read_text()
    )


def test_rendered_objects_validate_against_the_kubernetes_schemas(objects):
    problems = {f"{o['kind']}/{o['metadata']['name']}": schema_errors(o, {}) for o in objects}
    assert {name: errors for name, errors in problems.items() if errors} == {}


def test_the_server_cannot_be_reached_without_authentication(objects):
    assert exposure_problems(objects) == []
    assert flags(container(objects))["--serve-artifacts"] == ""
    assert flags(container(objects))["--artifacts-destination"].startswith("s3://")


def _args(objects: Objects) -> list[str]:
    return container(objects)["args"]


def _service(objects: Objects) -> dict[str, Any]:
    return one(objects, "Service", NAME)["spec"]


def _env(objects: Objects, name: str, value: str) -> None:
    container(objects)["env"].append({"name": name, "value": value})


BREAKS: dict[str, Callable[[Objects], None]] = {
    "no auth app": lambda o: _args(o).remove("--app-name=basic-auth"),
    "loopback host": lambda o: _args(o).append("-h=127.0.0.1"),
    "middleware off": lambda o: _args(o).append("--disable-security-middleware"),
    "middleware off by env": lambda o: _env(o, "MLFLOW_SERVER_DISABLE_SECURITY_MIDDLEWARE", "true"),
    "any host": lambda o: _args(o).extend(["--allowed-hosts", "*"]),
    "NodePort": lambda o: _service(o).update(type="NodePort"),
    "LoadBalancer": lambda o: _service(o).update(type="LoadBalancer"),
    "hostPort": lambda o: container(o)["ports"][0].update(hostPort=5000),
    "no TLS": lambda o: one(o, "Ingress")["spec"].pop("tls"),
}


@pytest.mark.parametrize("name", BREAKS)
def test_the_exposure_check_catches_an_open_server(objects, name):
    broken = copy.deepcopy(objects)
    BREAKS[name](broken)
    assert exposure_problems(broken)


def test_only_the_ingress_controller_and_churnops_pods_get_in(objects, repo_root):
    identity = ident.load(repo_root)
    pod_labels = one(objects, "Deployment", NAME)["spec"]["template"]["metadata"]["labels"]
    assert selects(one(objects, "Service", NAME)["spec"]["selector"], pod_labels)
    policy = one(objects, "NetworkPolicy", NAME)["spec"]
    assert selects(policy["podSelector"]["matchLabels"], pod_labels)
    assert set(policy["policyTypes"]) == {"Ingress", "Egress"}
    (rule,) = policy["ingress"]
    controller, churnops = rule["from"]
    assert controller == {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}
    }
    (expression,) = churnops["namespaceSelector"]["matchExpressions"]
    assert (expression["key"], expression["operator"]) == ("kubernetes.io/metadata.name", "In")
    assert expression["values"] == [identity.staging_namespace, identity.production_namespace]
    backends = [
        path["backend"]["service"]
        for rule in one(objects, "Ingress")["spec"]["rules"]
        for path in rule["http"]["paths"]
    ]
    assert backends == [{"name": NAME, "port": {"name": "http"}}]


def test_the_pod_is_hardened(objects):
    pod = one(objects, "Deployment", NAME)["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    account = one(objects, "ServiceAccount", pod["serviceAccountName"])
    assert account["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    server = container(objects)
    security = server["securityContext"]
    assert security["runAsUser"] > 0 and security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"]["drop"] == ["ALL"]
    for kind in ("requests", "limits"):
        assert set(server["resources"][kind]) == {"cpu", "memory"}, kind
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert server[probe]["httpGet"] == {"path": "/health", "port": "http"}, probe
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: volumes[m["name"]] for m in server["volumeMounts"]}
    assert "emptyDir" in mounts["/tmp"]
    config = env(server)["MLFLOW_AUTH_CONFIG_PATH"]["value"]
    assert "secret" in mounts[str(Path(config).parent)]


def test_names_agree_with_churnops_yaml(objects, repo_root):
    """What `churnops init` cannot render yet: the host and the namespace (docs/setup.md)."""
    identity = ident.load(repo_root)
    uri = urlsplit(identity.mlflow_tracking_uri)
    assert uri.scheme == "https" and uri.port is None and uri.path in ("", "/"), uri
    ingress = one(objects, "Ingress")["spec"]
    assert [rule["host"] for rule in ingress["rules"]] == [uri.hostname]
    assert [host for tls in ingress["tls"] for host in tls["hosts"]] == [uri.hostname]
    namespace = identity.production_namespace
    assert {o["metadata"]["namespace"] for o in objects} == {namespace}
    port = _service(objects)["ports"][0]["port"]
    allowed = env(container(objects))["MLFLOW_SERVER_ALLOWED_HOSTS"]["value"]
    assert allowed == f"{uri.hostname},{NAME}.{namespace}.svc:{port}"


def test_argocd_syncs_it_into_the_production_namespace(repo_root):
    identity = ident.load(repo_root)
    spec = one(render(repo_root / K8S / "argocd"), "Application", NAME)["spec"]
    assert spec["project"] == "churnops"
    assert spec["source"] == {
        "repoURL": identity.git_url,
        "targetRevision": "main",
        "path": str(MLFLOW),
    }
    assert spec["destination"]["namespace"] == identity.production_namespace
    assert spec["syncPolicy"]["automated"]["prune"] is True
    assert spec["syncPolicy"]["automated"]["selfHeal"] is True


def secret_refs(node: Any) -> Iterator[tuple[str, str]]:
    """(Secret, key) for every key a manifest reads: env, mounted items, Ingress TLS."""
    if isinstance(node, dict):
        if "secretKeyRef" in node:
            yield node["secretKeyRef"]["name"], node["secretKeyRef"]["key"]
        if "secretName" in node and "items" in node:
            yield from ((node["secretName"], item["key"]) for item in node["items"])
        elif "secretName" in node and "hosts" in node:
            yield from ((node["secretName"], key) for key in ("tls.crt", "tls.key"))
        else:
            assert "secretName" not in node, f"a whole Secret is mounted: {node}"
        assert "secretRef" not in node, f"a whole Secret is read into the environment: {node}"
        for value in node.values():
            yield from secret_refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from secret_refs(value)


def undocumented(docs: str, refs: set[tuple[str, str]]) -> list[tuple[str, str]]:
    """The refs no line of docs/setup.md's MLflow section names with both Secret and key."""
    section = docs.split(DOCS_SECTION, 1)[1].split("\n## ", 1)[0]
    lines = section.splitlines()
    return sorted(
        (name, key)
        for name, key in refs
        if not any(f"`{name}`" in line and f"`{key}`" in line for line in lines)
    )


def test_every_secret_key_is_documented(objects, repo_root):
    refs = set(secret_refs(objects))
    assert {name for name, _ in refs} == {f"{NAME}-{s}" for s in ("db", "auth", "s3", "tls")}
    docs = (repo_root / "docs" / "setup.md").read_text()
    assert undocumented(docs, refs) == []
    assert undocumented(docs, refs | {(f"{NAME}-db", "password")}) == [(f"{NAME}-db", "password")]


def locked_versions(repo_root: Path) -> dict[str, str]:
    text = (repo_root / "requirements.lock").read_text()
    return dict(re.findall(r"^([a-z0-9_.-]+)==([^\s;]+)", text, flags=re.MULTILINE))


def test_the_image_is_the_locked_mlflow_with_its_drivers(objects, repo_root):
    """The server deployed is the one the tests run: same MLflow, psycopg, boto3, Flask-WTF."""
    locked = locked_versions(repo_root)
    containerfile = (repo_root / MLFLOW / "Containerfile").read_text()
    version = locked["mlflow"]
    assert re.search(
        rf"^FROM ghcr\.io/mlflow/mlflow:v{re.escape(version)}(@sha256:[0-9a-f]{{64}})?$",
        containerfile,
        re.M,
    )
    pins = dict(re.findall(r'"([a-z0-9_-]+)(?:\[[a-z,]+\])?==([^"]+)"', containerfile))
    assert set(pins) == {"mlflow", "flask-wtf", "psycopg", "boto3"}
    assert {name: locked[name] for name in pins} == pins
    security = container(objects)["securityContext"]
    (user,) = re.findall(r"^USER (\d+):(\d+)$", containerfile, re.M)
    assert user == (str(security["runAsUser"]), str(security["runAsGroup"]))
    image = container(objects)["image"]
    assert image.endswith(f":v{version}") or "@sha256:" in image, image
    hadolint = Path(sys.executable).parent / "hadolint"
    done = subprocess.run(
        [str(hadolint), str(repo_root / MLFLOW / "Containerfile")], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_checkov_passes_with_only_the_documented_skips(objects, repo_root, tmp_path):
    (tmp_path / "mlflow.yaml").write_text(yaml.safe_dump_all(objects))
    results = checkov_results(repo_root, tmp_path)
    assert {c["file_path"] for c in results["passed_checks"]} >= {"/mlflow.yaml"}
    assert {c["check_id"] for c in results["skipped_checks"]} == DOCUMENTED_SKIPS
