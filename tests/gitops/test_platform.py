"""The cluster's platform (k8s/platform/) and the project's objects agree with each other.

The charts cannot run here, so what ties them to churnops is checked as data: the
Applications' pins and project, the stack's selectors against the labels on churnops'
ServiceMonitors, PrometheusRules and AlertmanagerConfig, the adapter's rule against the
HPA, the Ingresses against the Services, and the NetworkPolicies against the pods the
charts run (their labels as the charts' templates and the Prometheus Operator set them).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from churnops import identity
from tests.support.drill import ALERTMANAGER_CONFIG
from tests.support.k8s import K8S, matches, one, overlay_dirs, render, selects

PLATFORM = K8S / "platform"
CHARTS = {
    "kube-prometheus-stack",
    "prometheus-adapter",
    "metrics-server",
    "ingress-nginx",
    "gha-runner-scale-set-controller",
    "gha-runner-scale-set",
}
EXACT_VERSION = re.compile(r"^\d+\.\d+\.\d+$")
# Pod labels the charts give their pods: ingress-nginx's controller-deployment.yaml and
# selectorLabels (instance = release name); the Prometheus Operator's app.kubernetes.io/name.
CONTROLLER_POD = {
    "app.kubernetes.io/name": "ingress-nginx",
    "app.kubernetes.io/instance": "ingress-nginx",
    "app.kubernetes.io/component": "controller",
}
ADMISSION_JOB_POD = {**CONTROLLER_POD, "app.kubernetes.io/component": "admission-webhook"}
PROMETHEUS_POD = {"app.kubernetes.io/name": "prometheus"}
ALERTMANAGER_POD = {"app.kubernetes.io/name": "alertmanager"}
GRAFANA_POD = {"app.kubernetes.io/name": "grafana"}


@pytest.fixture(scope="module")
def apps(repo_root: Path) -> dict[str, dict[str, Any]]:
    return {a["metadata"]["name"]: a for a in render(repo_root / PLATFORM)}


@pytest.fixture(scope="module")
def bootstrap(repo_root: Path) -> list[dict[str, Any]]:
    return render(repo_root / K8S / "argocd")


@pytest.fixture(scope="module")
def overlays(repo_root: Path) -> dict[str, list[dict[str, Any]]]:
    return {path.name: render(path) for path in overlay_dirs(repo_root)}


def chart_source(app: dict[str, Any]) -> dict[str, Any]:
    spec = app["spec"]
    (source,) = [s for s in spec.get("sources", [spec.get("source")]) if "chart" in s]
    return source


def values(repo_root: Path, apps: dict[str, dict[str, Any]], name: str) -> dict[str, Any]:
    """The chart's values, read from the file its Application names ($values/PATH)."""
    (path,) = chart_source(apps[name])["helm"]["valueFiles"]
    assert path.startswith("$values/"), path
    return yaml.safe_load((repo_root / path.removeprefix("$values/")).read_text())


def namespace_of(apps: dict[str, dict[str, Any]], name: str) -> str:
    return apps[name]["spec"]["destination"]["namespace"]


def test_every_chart_is_pinned_and_its_values_come_from_this_repository(apps, repo_root):
    assert set(apps) == CHARTS
    git_url = identity.load(repo_root).git_url
    for name, app in apps.items():
        source = chart_source(app)
        assert source["chart"] == name
        assert EXACT_VERSION.match(source["targetRevision"]), (name, source["targetRevision"])
        assert source["helm"]["releaseName"] == name
        others = [s for s in app["spec"].get("sources", []) if s is not source]
        assert others in ([], [{"repoURL": git_url, "targetRevision": "main", "ref": "values"}])
        if others:
            assert values(repo_root, apps, name), name
        automated = app["spec"]["syncPolicy"]["automated"]
        assert automated["prune"] is True and automated["selfHeal"] is True


def test_platform_projects_grant_only_what_the_charts_need(apps, bootstrap, repo_root):
    projects = {p["metadata"]["name"]: p["spec"] for p in bootstrap if p["kind"] == "AppProject"}
    git_url = identity.load(repo_root).git_url
    charts = projects["churnops-platform"]
    assert {a["spec"]["project"] for a in apps.values()} == {"churnops-platform"}
    assert set(charts["sourceRepos"]) == {git_url} | {
        chart_source(a)["repoURL"] for a in apps.values()
    }
    assert {d["namespace"] for d in charts["destinations"]} == {
        namespace_of(apps, name) for name in apps
    } | {"kube-system"}  # kube-prometheus-stack's Services for the control plane
    assert "namespaceResourceWhitelist" not in charts
    assert all("*" not in k["group"] + k["kind"] for k in charts["clusterResourceWhitelist"])
    # The root may only create Applications, only in argocd, only from this repository.
    root = one(bootstrap, "Application", "platform")["spec"]
    assert root["source"] == {"repoURL": git_url, "targetRevision": "main", "path": str(PLATFORM)}
    assert projects[root["project"]] == {
        "description": projects[root["project"]]["description"],
        "sourceRepos": [git_url],
        "destinations": [{"server": "https://kubernetes.default.svc", "namespace": "argocd"}],
        "namespaceResourceWhitelist": [{"group": "argoproj.io", "kind": "Application"}],
    }
    assert root["destination"]["namespace"] == "argocd"


def test_the_stack_selects_the_projects_monitoring_objects(apps, repo_root, overlays):
    stack = values(repo_root, apps, "kube-prometheus-stack")
    prometheus = stack["prometheus"]["prometheusSpec"]
    selectors = {
        "ServiceMonitor": prometheus["serviceMonitorSelector"],
        "PrometheusRule": prometheus["ruleSelector"],
        "AlertmanagerConfig": stack["alertmanager"]["alertmanagerSpec"][
            "alertmanagerConfigSelector"
        ],
    }
    # The chart labels its own ServiceMonitors and rules release=<release name>.
    release = {"release": chart_source(apps["kube-prometheus-stack"])["helm"]["releaseName"]}
    for kind, selector in selectors.items():
        assert selector == {"matchLabels": release}, kind
    assert prometheus["serviceMonitorNamespaceSelector"] == {}
    assert prometheus["ruleNamespaceSelector"] == {}
    found = set()
    for name, objects in overlays.items():
        for obj in objects:
            if obj["kind"] in selectors:
                found.add(obj["kind"])
                labels = obj["metadata"].get("labels", {})
                assert selects(selectors[obj["kind"]]["matchLabels"], labels), (name, obj)
    assert found == set(selectors)


def scraped_service(objects: list[dict[str, Any]], monitor: dict[str, Any]) -> dict[str, Any]:
    (service,) = [
        s
        for s in objects
        if s["kind"] == "Service"
        and selects(monitor["spec"]["selector"]["matchLabels"], s["metadata"]["labels"])
    ]
    return service


def test_every_service_monitor_scrapes_a_service_port(overlays):
    for name, objects in overlays.items():
        for monitor in (o for o in objects if o["kind"] == "ServiceMonitor"):
            service = scraped_service(objects, monitor)
            ports = {p["name"] for p in service["spec"]["ports"]}
            assert {e["port"] for e in monitor["spec"]["endpoints"]} <= ports, (name, monitor)


def test_the_hpa_metric_is_the_adapters_rule_on_the_stacks_prometheus(apps, repo_root, overlays):
    adapter = values(repo_root, apps, "prometheus-adapter")
    assert adapter["rules"]["default"] is False
    served = {rule["name"]["as"] for rule in adapter["rules"]["custom"]}
    for objects in overlays.values():
        hpa = one(objects, "HorizontalPodAutoscaler", "churnops-service")
        (pods,) = [m["pods"] for m in hpa["spec"]["metrics"] if m["type"] == "Pods"]
        assert pods["metric"]["name"] in served
    release = chart_source(apps["kube-prometheus-stack"])["helm"]["releaseName"]
    stack_namespace = namespace_of(apps, "kube-prometheus-stack")
    assert adapter["prometheus"]["url"] == f"http://{release}-prometheus.{stack_namespace}.svc"
    assert adapter["prometheus"]["port"] == 9090


def test_ingresses_reach_the_api_and_the_ui_over_tls(apps, repo_root, overlays):
    ingress_class = values(repo_root, apps, "ingress-nginx")["controller"]["ingressClassResource"]
    me = identity.load(repo_root).values()
    for name, objects in overlays.items():
        ingresses = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Ingress"}
        backends = set()
        for ingress in ingresses.values():
            spec = ingress["spec"]
            assert spec["ingressClassName"] == ingress_class["name"]
            (rule,) = spec["rules"]
            assert rule["host"] == me[f"{name}_hostname"]
            assert spec["tls"] == [{"hosts": [rule["host"]], "secretName": "churnops-tls"}]
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                service = one(objects, "Service", backend["name"])
                assert backend["port"]["name"] in {p["name"] for p in service["spec"]["ports"]}
                backends.add(backend["name"])
                if backend["name"] == "churnops-service":  # its metrics and probes stay inside
                    assert path["pathType"] == "Exact", path
                    assert path["path"] not in {"/metrics", "/livez", "/readyz"}, path
        assert backends == {"churnops-service", "churnops-ui"}


def admits(policy: dict[str, Any], namespace: str, pod: dict[str, str], port: str) -> bool:
    """Whether POLICY lets a pod with labels POD in NAMESPACE reach PORT (a port name)."""
    own_namespace = policy["metadata"]["namespace"]
    for rule in policy["spec"].get("ingress", []):
        if not any(p.get("port") in (port, None) for p in rule.get("ports", [{}])):
            continue
        for peer in rule["from"]:
            names = {"kubernetes.io/metadata.name": namespace}
            in_namespace = (
                matches(peer["namespaceSelector"], names)
                if "namespaceSelector" in peer
                else namespace == own_namespace
            )
            if in_namespace and matches(peer.get("podSelector", {}), pod):
                return True
    return False


def policies_for(objects: list[dict[str, Any]], pod: dict[str, str]) -> list[dict[str, Any]]:
    """The NetworkPolicies that select a pod with labels POD."""
    return [
        p
        for p in objects
        if p["kind"] == "NetworkPolicy" and matches(p["spec"]["podSelector"], pod)
    ]


def policy_for(objects: list[dict[str, Any]], service: dict[str, Any]) -> dict[str, Any]:
    """The one NetworkPolicy that selects the pods behind SERVICE."""
    (deployment,) = [
        d
        for d in objects
        if d["kind"] == "Deployment"
        and selects(service["spec"]["selector"], d["spec"]["template"]["metadata"]["labels"])
    ]
    (policy,) = policies_for(objects, deployment["spec"]["template"]["metadata"]["labels"])
    return policy


def test_network_policies_admit_the_ingress_controller_and_prometheus_only(apps, overlays):
    controller_ns = namespace_of(apps, "ingress-nginx")
    monitoring = namespace_of(apps, "kube-prometheus-stack")
    for name, objects in overlays.items():
        for deployment in (o for o in objects if o["kind"] == "Deployment"):
            pod = deployment["spec"]["template"]["metadata"]["labels"]
            assert len(policies_for(objects, pod)) == 1, (name, deployment["metadata"]["name"])
        for ingress in (o for o in objects if o["kind"] == "Ingress"):
            for path in ingress["spec"]["rules"][0]["http"]["paths"]:
                backend = path["backend"]["service"]
                service = one(objects, "Service", backend["name"])
                (port,) = [
                    p for p in service["spec"]["ports"] if p["name"] == backend["port"]["name"]
                ]
                policy = policy_for(objects, service)
                assert admits(policy, controller_ns, CONTROLLER_POD, port["targetPort"])
                assert not admits(policy, controller_ns, ADMISSION_JOB_POD, port["targetPort"])
                assert not admits(policy, "default", CONTROLLER_POD, port["targetPort"])
        for monitor in (o for o in objects if o["kind"] == "ServiceMonitor"):
            service = scraped_service(objects, monitor)
            policy = policy_for(objects, service)
            for endpoint in monitor["spec"]["endpoints"]:
                (port,) = [p for p in service["spec"]["ports"] if p["name"] == endpoint["port"]]
                assert admits(policy, monitoring, PROMETHEUS_POD, port["targetPort"])
                assert not admits(policy, monitoring, GRAFANA_POD, port["targetPort"])
        # Alertmanager's webhook reaches the retrain trigger where it runs (production).
        for policy in (o for o in objects if o["metadata"]["name"] == "churnops-retrain-trigger"):
            if policy["kind"] == "NetworkPolicy":
                assert admits(policy, monitoring, ALERTMANAGER_POD, "http")


def parse_matcher(text: str) -> tuple[str, str, str]:
    name, op, value = re.fullmatch(r'\s*(\w+)\s*(=~|!~|!=|=)\s*"?([^"]*)"?\s*', text).groups()
    return name, op, value


def test_alertmanager_config_is_the_drills_routing(apps, repo_root, overlays):
    """The AlertmanagerConfig Argo CD applies and the file the drill loads route alike."""
    plain = yaml.safe_load((repo_root / ALERTMANAGER_CONFIG).read_text())
    (drift,) = [r for r in plain["route"]["routes"] if r["receiver"] == "retrain-trigger"]
    (receiver,) = [r for r in plain["receivers"] if r["name"] == "retrain-trigger"]
    (hook,) = receiver["webhook_configs"]
    stack = values(repo_root, apps, "kube-prometheus-stack")
    strategy = stack["alertmanager"]["alertmanagerSpec"]["alertmanagerConfigMatcherStrategy"]
    assert "AlertmanagerConfig" not in {o["kind"] for o in overlays["staging"]}

    config = one(overlays["production"], "AlertmanagerConfig")
    route = config["spec"]["route"]
    matchers = {
        (m["name"], m.get("matchType", "=~" if m.get("regex") else "="), m["value"])
        for m in route["matchers"]
    }
    if strategy == {"type": "OnNamespace"}:  # the operator adds the object's namespace
        matchers.add(("namespace", "=", config["metadata"]["namespace"]))
    assert matchers == {parse_matcher(m) for m in drift["matchers"]}
    assert route["groupBy"] == drift.get("group_by", plain["route"]["group_by"])
    timings = {"groupWait": "group_wait", "groupInterval": "group_interval"}
    for camel, snake in {**timings, "repeatInterval": "repeat_interval"}.items():
        assert route[camel] == drift[snake], camel
    assert drift["continue"] is True  # what the operator sets on every AlertmanagerConfig

    (spec_receiver,) = config["spec"]["receivers"]
    assert spec_receiver["name"] == route["receiver"]
    (webhook,) = spec_receiver["webhookConfigs"]
    assert webhook["url"] == hook["url"]
    assert (webhook["sendResolved"], webhook["maxAlerts"]) == (
        hook["send_resolved"],
        hook["max_alerts"],
    )
    authorization = webhook["httpConfig"]["authorization"]
    secret = authorization["credentials"]
    assert authorization["type"] == hook["http_config"]["authorization"]["type"]
    assert hook["http_config"]["authorization"]["credentials_file"] == (
        f"/etc/alertmanager/secrets/{secret['name']}/{secret['key']}"
    )
    # ... the Secret the trigger reads its token from.
    trigger = one(overlays["production"], "Deployment", "churnops-retrain-trigger")
    volumes = {v["name"]: v for v in trigger["spec"]["template"]["spec"]["volumes"]}
    assert volumes["webhook-token"]["secret"]["secretName"] == secret["name"]
    assert volumes["webhook-token"]["secret"]["items"][0]["key"] == secret["key"]

    # The root: every alert reaches the operators, as in the file.
    root = stack["alertmanager"]["config"]["route"]
    keys = ("receiver", "group_by", "group_wait", "group_interval", "repeat_interval")
    assert {k: root[k] for k in keys} == {k: plain["route"][k] for k in keys}
    assert root["routes"][-1] == plain["route"]["routes"][-1] == {"receiver": "operators"}


def test_ct_runners_hold_the_largest_benchmarked_pipeline(apps, repo_root):
    """The scale set's pods fit the peak of bench/RESULTS-pipeline.md's largest size, +20%."""
    results = (repo_root / "bench" / "RESULTS-pipeline.md").read_text()
    (all_stages,) = [line for line in results.splitlines() if line.startswith("| all stages |")]
    peaks = re.findall(r"s, ([\d,]+) MiB", all_stages)
    largest_mib = int(peaks[-1].replace(",", ""))
    (runner,) = values(repo_root, apps, "gha-runner-scale-set")["template"]["spec"]["containers"]
    resources = runner["resources"]
    assert resources["requests"] == resources["limits"]  # never evicted for its memory
    memory = resources["limits"]["memory"]
    assert memory.endswith("Gi"), memory
    assert int(memory.removesuffix("Gi")) * 1024 >= 1.2 * largest_mib, (memory, largest_mib)
