"""Static checks of k8s/: every overlay renders, validates and keeps the contracts.

No cluster can run here, so these tests check what can be checked without one: the
rendered objects against the Kubernetes schemas (kubernetes-validate) and the vendored
CRD schemas (k8s/crds/), the selectors that must agree, the hardening the issue asks
for, and the PrometheusRule with Prometheus' own promtool (syntax and unit tests).
"""

from __future__ import annotations

import ast
import copy
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from churnops.config import load_params
from tests.support.k8s import (
    K8S,
    kustomization,
    one,
    overlay_dirs,
    render,
    render_with_component,
    selects,
)

# The oldest Kubernetes the manifests need (preStop `sleep`, 1.30) and the newest schemas.
KUBERNETES_VERSIONS = ("1.30.0", kubernetes_validate.utils.latest_version())
CRD_SCHEMAS = {
    ("argoproj.io/v1alpha1", "Application"): "argoproj.io_v1alpha1_application.json",
    ("argoproj.io/v1alpha1", "AppProject"): "argoproj.io_v1alpha1_appproject.json",
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "monitoring.coreos.com_v1_servicemonitor.json",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "monitoring.coreos.com_v1_prometheusrule.json",
    ("monitoring.coreos.com/v1alpha1", "AlertmanagerConfig"): (
        "monitoring.coreos.com_v1alpha1_alertmanagerconfig.json"
    ),
}
IMAGE_REPO = "ghcr.io/churnops/churnops-service"
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
ALERTS = {
    "ChurnopsFeatureDrift",
    "ChurnopsHighErrorRate",
    "ChurnopsHighLatencyP99",
    "ChurnopsNoTraffic",
}
PROMTOOL = "/usr/bin/promtool"
SERVICE = "churnops-service"


@pytest.fixture(scope="module")
def overlays(repo_root: Path) -> dict[str, list[dict[str, Any]]]:
    found = overlay_dirs(repo_root)
    assert {p.name for p in found} >= {"staging", "production"}
    return {path.name: render(path) for path in found}


@pytest.fixture(scope="module")
def argocd(repo_root: Path) -> list[dict[str, Any]]:
    return render(repo_root / K8S / "argocd")


@pytest.fixture(scope="module")
def platform(repo_root: Path) -> list[dict[str, Any]]:
    return render(repo_root / K8S / "platform")


@pytest.fixture(scope="module")
def pull_secret_overlays(repo_root: Path) -> dict[str, list[dict[str, Any]]]:
    """Each overlay with the optional imagePullSecrets component enabled."""
    component = repo_root / K8S / "components" / "image-pull-secret"
    return {path.name: render_with_component(path, component) for path in overlay_dirs(repo_root)}


def strict(schema: dict[str, Any]) -> dict[str, Any]:
    """A CRD schema that rejects unknown fields, as `kubectl apply --validate=strict` does."""
    schema = copy.deepcopy(schema)

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "object" and "properties" in node:
                node.setdefault("additionalProperties", False)
            if isinstance(node.get("pattern"), str) and node["pattern"].startswith("^(?i)"):
                # Go's RE2 takes inline flags anywhere; Python's re only at the start.
                node["pattern"] = "(?i)^" + node["pattern"][5:]
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(schema)
    return schema


@pytest.fixture(scope="module")
def crd_validators(repo_root: Path) -> dict[tuple[str, str], jsonschema.Draft7Validator]:
    validators = {}
    for key, filename in CRD_SCHEMAS.items():
        schema = strict(json.loads((repo_root / K8S / "crds" / filename).read_text()))
        jsonschema.Draft7Validator.check_schema(schema)
        validators[key] = jsonschema.Draft7Validator(schema)
    return validators


def schema_errors(
    obj: dict[str, Any], crd_validators: dict[tuple[str, str], jsonschema.Draft7Validator]
) -> list[str]:
    """Why OBJ is invalid (empty when valid): CRD kinds by their schema, others by Kubernetes'."""
    key = (obj["apiVersion"], obj["kind"])
    if key in crd_validators:
        return [
            f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
            for e in crd_validators[key].iter_errors(obj)
        ]
    errors = []
    for version in KUBERNETES_VERSIONS:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            errors.append(f"Kubernetes {version}: {'.'.join(map(str, exc.path))}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError:
            errors.append(f"no schema for {key} in Kubernetes {version} nor in k8s/crds/")
    return errors


def test_every_overlay_renders_the_whole_service(overlays):
    expected = {
        "Namespace",
        "ServiceAccount",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "NetworkPolicy",
        "HorizontalPodAutoscaler",
        "ServiceMonitor",
        "PrometheusRule",
        "Ingress",
    }
    for name, objects in overlays.items():
        assert {o["kind"] for o in objects} >= expected, name
        namespace = one(objects, "Namespace")["metadata"]["name"]
        assert namespace == f"churnops-{name}"
        namespaced = [o for o in objects if o["kind"] != "Namespace"]
        assert {o["metadata"].get("namespace") for o in namespaced} == {namespace}, name
        labels = one(objects, "Namespace")["metadata"]["labels"]
        assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


def test_rendered_objects_validate_against_their_schemas(
    overlays, argocd, platform, pull_secret_overlays, crd_validators
):
    renders = [*overlays.values(), *pull_secret_overlays.values(), argocd, platform]
    objects = [o for rendered in renders for o in rendered]
    problems = {
        f"{o['kind']}/{o['metadata'].get('namespace', '')}/{o['metadata']['name']}": errors
        for o in objects
        if (errors := schema_errors(o, crd_validators))
    }
    assert problems == {}


@pytest.mark.parametrize(
    ("kind", "path", "value"),
    [
        ("ServiceMonitor", ("spec", "endpoints", 0, "intervall"), "15s"),
        ("ServiceMonitor", ("spec", "endpoints", 0, "scheme"), "ftp"),
        ("PrometheusRule", ("spec", "groups", 1, "rules", 0, "for"), "one minute"),
        ("AlertmanagerConfig", ("spec", "route", "groupwait"), "30s"),
        ("AlertmanagerConfig", ("spec", "receivers", 0, "webhookConfigs", 0, "maxAlerts"), "0"),
        ("Ingress", ("spec", "rules", 0, "http", "paths", 0, "pathType"), 3),
        ("Ingress", ("spec", "tls", 0, "secret"), "churnops-tls"),
        ("Deployment", ("spec", "template", "spec", "containers", 0, "imagePullPolicy"), 3),
        ("HorizontalPodAutoscaler", ("spec", "behaviour"), {}),
    ],
)
def test_schema_validation_catches_a_broken_object(overlays, crd_validators, kind, path, value):
    """The validation above can fail: a typo or a wrong type in a copy is reported."""
    objects = overlays["production"]
    broken = copy.deepcopy(one(objects, kind, None if kind == "AlertmanagerConfig" else SERVICE))
    node = broken
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    assert schema_errors(broken, crd_validators)


def test_selectors_agree_with_the_pods(overlays):
    for name, objects in overlays.items():
        deployment = one(objects, "Deployment", SERVICE)
        pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert selects(deployment["spec"]["selector"]["matchLabels"], pod_labels), name
        service = one(objects, "Service", SERVICE)
        assert selects(service["spec"]["selector"], pod_labels), name
        pdb = one(objects, "PodDisruptionBudget", SERVICE)
        assert selects(pdb["spec"]["selector"]["matchLabels"], pod_labels), name
        policy = one(objects, "NetworkPolicy", SERVICE)
        assert selects(policy["spec"]["podSelector"]["matchLabels"], pod_labels), name
        for spread in deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]:
            assert selects(spread["labelSelector"]["matchLabels"], pod_labels), name
        target = one(objects, "HorizontalPodAutoscaler", SERVICE)["spec"]["scaleTargetRef"]
        assert (target["apiVersion"], target["kind"], target["name"]) == (
            deployment["apiVersion"],
            deployment["kind"],
            deployment["metadata"]["name"],
        ), name
        monitor = one(objects, "ServiceMonitor", SERVICE)
        assert selects(monitor["spec"]["selector"]["matchLabels"], service["metadata"]["labels"])
        service_ports = {p["name"] for p in service["spec"]["ports"]}
        assert {e["port"] for e in monitor["spec"]["endpoints"]} <= service_ports, name


def request_timeout_seconds(repo_root: Path) -> float:
    """BentoML's traffic timeout, read from the service definition (serving/service.py)."""
    tree = ast.parse((repo_root / "src/churnops/serving/service.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and ast.unparse(node.func) == "bentoml.service":
            for keyword in node.keywords:
                if keyword.arg == "traffic":
                    return float(ast.literal_eval(keyword.value)["timeout"])
    raise AssertionError("src/churnops/serving/service.py sets no bentoml.service traffic timeout")


def test_deployment_is_hardened_and_shuts_down_gracefully(overlays, repo_root):
    timeout = request_timeout_seconds(repo_root)
    for name, objects in overlays.items():
        deployment = one(objects, "Deployment", SERVICE)
        pod = deployment["spec"]["template"]["spec"]
        assert deployment["spec"]["replicas"] >= 2, name
        assert pod["automountServiceAccountToken"] is False
        account = one(objects, "ServiceAccount", pod["serviceAccountName"])
        assert account["automountServiceAccountToken"] is False
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        (container,) = pod["containers"]
        security = container["securityContext"]
        assert (security["runAsUser"], security["runAsGroup"]) == (1034, 1034)
        assert security["allowPrivilegeEscalation"] is False
        assert security["readOnlyRootFilesystem"] is True
        assert security["capabilities"]["drop"] == ["ALL"]
        assert security["seccompProfile"]["type"] == "RuntimeDefault"
        for kind in ("requests", "limits"):
            assert set(container["resources"][kind]) == {"cpu", "memory"}, name
        # BentoML runs one worker per whole CPU of the cgroup's quota (workers="cpu_count"):
        # a fractional limit would pay for CPU no worker uses.
        cpu = str(container["resources"]["limits"]["cpu"])
        assert cpu.isdigit() and int(cpu) >= 1, (name, cpu)
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
        assert "httpGet" in container["startupProbe"]
        assert {p["name"]: p["containerPort"] for p in container["ports"]} == {"http": 3000}
        pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
        assert pod["terminationGracePeriodSeconds"] > pre_stop + timeout, name
        # Everything BentoML writes lands on an emptyDir: its home and /tmp.
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["BENTOML_HOME"] in mounts and "/tmp" in mounts
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert all("emptyDir" in volumes[mounts[path]] for path in mounts)


def test_image_is_pinned_by_digest_through_the_images_entry(overlays, repo_root):
    base = yaml.safe_load((repo_root / K8S / "base" / "deployment.yaml").read_text())
    assert base["spec"]["template"]["spec"]["containers"][0]["image"] == "churnops-service"
    for name, objects in overlays.items():
        (entry,) = [
            i
            for i in kustomization(repo_root / K8S / "overlays" / name)["images"]
            if i["name"] == "churnops-service"
        ]
        assert entry["newName"] == IMAGE_REPO
        assert DIGEST.match(entry["digest"]), entry
        (container,) = one(objects, "Deployment", SERVICE)["spec"]["template"]["spec"]["containers"]
        assert container["image"] == f"{IMAGE_REPO}@{entry['digest']}"
        # GET /metadata reports the image: the overlay copies the reference into the env.
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["CHURNOPS_IMAGE"] == container["image"]


def test_the_ui_image_is_pinned_by_a_real_digest_in_each_overlay(overlays, repo_root):
    """The UI's digest is one the release moves (set-image --image churnops-ui), and never
    a placeholder: all zeros names no image, so the UI would never start."""
    for name, objects in overlays.items():
        (entry,) = [
            i
            for i in kustomization(repo_root / K8S / "overlays" / name)["images"]
            if i["name"] == "churnops-ui"
        ]
        assert DIGEST.match(entry["digest"]) and set(entry["digest"][7:]) != {"0"}, (name, entry)
        (container,) = one(objects, "Deployment", "churnops-ui")["spec"]["template"]["spec"][
            "containers"
        ]
        assert container["image"] == f"{entry['newName']}@{entry['digest']}"


def test_image_pull_secret_component_reaches_every_pod(overlays, pull_secret_overlays):
    for name, objects in pull_secret_overlays.items():
        deployments = [o for o in objects if o["kind"] == "Deployment"]
        assert len(deployments) == len([o for o in overlays[name] if o["kind"] == "Deployment"])
        for deployment in deployments:
            pod = deployment["spec"]["template"]["spec"]
            assert pod["imagePullSecrets"] == [{"name": "churnops-registry"}], name
    for objects in overlays.values():  # optional: off unless an overlay lists it
        assert all(
            "imagePullSecrets" not in o.get("spec", {}).get("template", {}).get("spec", {})
            for o in objects
        )


def test_overlays_have_a_components_list(repo_root):
    """Other parts (the UI, the retrain trigger) plug in by appending to `components:`."""
    for path in overlay_dirs(repo_root):
        components = kustomization(path)["components"]
        assert isinstance(components, list) and "../../monitoring" in components
        for component in components:
            assert kustomization(path / component)["kind"] == "Component", component


def test_autoscaler_scales_on_cpu_and_requests_per_pod(overlays, repo_root):
    adapter = yaml.safe_load(
        (repo_root / K8S / "platform" / "values" / "prometheus-adapter.yaml").read_text()
    )
    served = {rule["name"]["as"]: rule for rule in adapter["rules"]["custom"]}
    for objects in overlays.values():
        hpa = one(objects, "HorizontalPodAutoscaler", SERVICE)
        assert hpa["apiVersion"] == "autoscaling/v2"
        assert 2 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
        metrics = {m["type"]: m for m in hpa["spec"]["metrics"]}
        assert metrics["Resource"]["resource"]["name"] == "cpu"
        pods_metric = metrics["Pods"]["pods"]
        assert pods_metric["target"]["type"] == "AverageValue"
        rule = served[pods_metric["metric"]["name"]]
        assert rule["seriesQuery"].startswith("churnops_request_duration_seconds_count{")
        assert set(hpa["spec"]["behavior"]) == {"scaleUp", "scaleDown"}
        down = hpa["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"]
        assert down > hpa["spec"]["behavior"]["scaleUp"]["stabilizationWindowSeconds"]


def test_argocd_applications_sync_each_overlay(argocd, repo_root, overlays):
    applications = {
        a["metadata"]["name"]: a
        for a in argocd
        if a["kind"] == "Application"
        and a["spec"]["project"] == "churnops"
        and a["spec"].get("source", {}).get("path", "").startswith("k8s/overlays/")
    }
    assert set(applications) == {f"churnops-{name}" for name in overlays}
    for name, objects in overlays.items():
        spec = applications[f"churnops-{name}"]["spec"]
        assert spec["source"]["path"] == f"k8s/overlays/{name}"
        assert spec["source"]["targetRevision"] == "main"
        assert spec["destination"]["namespace"] == one(objects, "Namespace")["metadata"]["name"]
        automated = spec["syncPolicy"]["automated"]
        assert automated["prune"] is True and automated["selfHeal"] is True
        # The HPA owns replicas: self-heal must not fight it.
        assert any(
            d["kind"] == "Deployment" and "/spec/replicas" in d["jsonPointers"]
            for d in spec["ignoreDifferences"]
        )


@pytest.fixture(scope="module")
def rules_file(repo_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """spec.groups of the PrometheusRule, as a plain Prometheus rule file."""
    assert shutil.which(PROMTOOL), "promtool is missing: run `make setup-gitops`"
    rule = yaml.safe_load((repo_root / K8S / "monitoring" / "prometheusrule.yaml").read_text())
    path = tmp_path_factory.mktemp("rules") / "rules.yml"
    path.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    return path


def test_promtool_accepts_the_rules(rules_file):
    done = subprocess.run(
        [PROMTOOL, "check", "rules", str(rules_file)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    alerts = {
        r["alert"]
        for g in yaml.safe_load(rules_file.read_text())["groups"]
        for r in g["rules"]
        if "alert" in r
    }
    assert alerts >= ALERTS


def test_promtool_accepts_every_rendered_rule(overlays, tmp_path):
    """Rules other parts add (components, monitoring) get the same syntax check."""
    for name, objects in overlays.items():
        groups = [g for o in objects if o["kind"] == "PrometheusRule" for g in o["spec"]["groups"]]
        path = tmp_path / f"{name}.yml"
        path.write_text(yaml.safe_dump({"groups": groups}))
        done = subprocess.run(
            [PROMTOOL, "check", "rules", str(path)], capture_output=True, text=True
        )
        assert done.returncode == 0, done.stdout + done.stderr


def test_drift_threshold_matches_params(rules_file, repo_root):
    """The `features` annotation lists features above serve.psi_threshold, as the service does."""
    threshold = load_params(repo_root / "params.yaml")["serve"]["psi_threshold"]
    groups = yaml.safe_load(rules_file.read_text())["groups"]
    (drift,) = [r for g in groups for r in g["rules"] if r.get("alert") == "ChurnopsFeatureDrift"]
    used = set(re.findall(r"churnops_feature_drift_psi\{[^}]*\}\) > ([0-9.]+)", str(drift)))
    assert used == {str(threshold)}
    assert drift["for"] == "1m"


def series(name: str, values: str, **labels: str) -> dict[str, str]:
    pairs = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    return {"series": f"{name}{{{pairs}}}", "values": values}


def test_alerts_fire_on_synthetic_series(rules_file, tmp_path):
    """promtool's rule unit tests: each alert fires on the series that should fire it."""
    ns = "churnops-production"
    buckets = [
        series("churnops_request_duration_seconds_bucket", f"0+{rate}x40", namespace=ns, le=le)
        for le, rate in (("0.1", 0), ("0.25", 0), ("0.5", 600), ("+Inf", 600))
    ]
    tests = {
        "rule_files": [str(rules_file)],
        "evaluation_interval": "15s",
        "tests": [
            {
                "interval": "15s",
                "input_series": [
                    series("churnops_drift_detected", "0 0 1x20", namespace=ns, pod="a"),
                    series("churnops_feature_drift_psi", "0.5x22", namespace=ns, feature="tenure"),
                    series(
                        "churnops_feature_drift_psi", "0.3x22", namespace=ns, feature="contract"
                    ),
                    series("churnops_feature_drift_psi", "0.05x22", namespace=ns, feature="female"),
                ],
                "alert_rule_test": [
                    {"eval_time": "60s", "alertname": "ChurnopsFeatureDrift", "exp_alerts": []},
                    {
                        "eval_time": "120s",
                        "alertname": "ChurnopsFeatureDrift",
                        "exp_alerts": [
                            {
                                "exp_labels": {"severity": "warning", "namespace": ns},
                                "exp_annotations": {
                                    "features": "contract,tenure",
                                    "summary": "Live traffic drifted from the training "
                                    f"reference (namespace {ns})",
                                    "description": "PSI above 0.2 on contract (0.30), tenure "
                                    "(0.50). The retrain trigger starts the continuous-training "
                                    "workflow (reason drift).",
                                },
                            }
                        ],
                    },
                ],
            },
            {
                "interval": "1m",
                "input_series": [
                    series("churnops_request_duration_seconds_count", "0+600x40", namespace=ns),
                    series("churnops_internal_errors_total", "0+30x40", namespace=ns),
                    *buckets,
                ],
                "alert_rule_test": [
                    {
                        "eval_time": "20m",
                        "alertname": "ChurnopsHighErrorRate",
                        "exp_alerts": [
                            {
                                "exp_labels": {"severity": "critical", "namespace": ns},
                                "exp_annotations": {
                                    "summary": "More than 1% of /predict requests fail with 5xx"
                                    f" in {ns}",
                                    "description": "5% of requests end in an internal error.",
                                },
                            }
                        ],
                    },
                    {
                        "eval_time": "20m",
                        "alertname": "ChurnopsHighLatencyP99",
                        "exp_alerts": [
                            {
                                "exp_labels": {"severity": "warning", "namespace": ns},
                                "exp_annotations": {
                                    "summary": f"/predict p99 latency above 250 ms in {ns}",
                                    # Every request in the (0.25, 0.5] bucket: 0.25 + 0.99 * 0.25.
                                    "description": "p99 is 497.5ms; check the HPA and CPU "
                                    "saturation.",
                                },
                            }
                        ],
                    },
                    {"eval_time": "20m", "alertname": "ChurnopsNoTraffic", "exp_alerts": []},
                ],
            },
            {
                "interval": "1m",
                "input_series": [
                    series("churnops_request_duration_seconds_count", "100x40", namespace=ns)
                ],
                "alert_rule_test": [
                    {
                        "eval_time": "30m",
                        "alertname": "ChurnopsNoTraffic",
                        "exp_alerts": [
                            {
                                "exp_labels": {"severity": "warning", "namespace": ns},
                                "exp_annotations": {
                                    "summary": f"No /predict requests for 15 minutes in {ns}",
                                    "description": "The service is scraped but nobody is "
                                    "calling it; check ingress and clients.",
                                },
                            }
                        ],
                    },
                    {"eval_time": "30m", "alertname": "ChurnopsHighErrorRate", "exp_alerts": []},
                ],
            },
        ],
    }
    path = tmp_path / "tests.yml"
    path.write_text(yaml.safe_dump(tests, sort_keys=False))
    done = subprocess.run([PROMTOOL, "test", "rules", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
