"""The monitoring files: rules and routing pass Prometheus' and Alertmanager's own checkers,
the quality alerts fire when they should (promtool's rule unit tests), thresholds agree with
the release gate, the webhook reaches the trigger's Service, and drift reaches GitHub within
five minutes with production settings.

promtool and amtool come with Debian's prometheus and prometheus-alertmanager packages
(`make setup-monitoring`, part of `make test`'s setup).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import yaml

from churnops.config import load_params
from tests.support.drill import (
    ALERTMANAGER_CONFIG,
    PROMTOOL,
    Timing,
    drill_rules,
    production_bound,
    rule_groups,
)

AMTOOL = "/usr/bin/amtool"
QUALITY_RULES = Path("k8s/monitoring/prometheusrule-quality.yaml")
PROMTOOL_TESTS = Path(__file__).parent / "prometheus"
COMPONENT = Path("k8s/components/retrain-trigger")
DASHBOARD = Path("k8s/monitoring/grafana-dashboard.json")


def routes_for(repo_root: Path, *labels: str) -> str:
    out = subprocess.run(
        [
            AMTOOL,
            "config",
            "routes",
            "test",
            f"--config.file={repo_root / ALERTMANAGER_CONFIG}",
            *labels,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def test_alertmanager_config_is_valid(repo_root: Path):
    check = subprocess.run(
        [AMTOOL, "check-config", str(repo_root / ALERTMANAGER_CONFIG)],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stdout + check.stderr


def test_only_production_drift_reaches_the_trigger_and_operators_get_everything(
    repo_root: Path,
):
    production = "namespace=churnops-production"
    assert routes_for(repo_root, "alertname=ChurnopsFeatureDrift", production) == (
        "retrain-trigger,operators"
    )
    assert routes_for(
        repo_root, "alertname=ChurnopsFeatureDrift", "namespace=churnops-staging"
    ) == ("operators")
    assert routes_for(repo_root, "alertname=ChurnopsHighErrorRate", production) == "operators"


def test_webhook_url_is_the_trigger_service_in_the_production_namespace(repo_root: Path):
    service = yaml.safe_load((repo_root / COMPONENT / "service.yaml").read_text())
    overlay = yaml.safe_load((repo_root / "k8s/overlays/production/kustomization.yaml").read_text())
    config = yaml.safe_load((repo_root / ALERTMANAGER_CONFIG).read_text())
    [receiver] = [r for r in config["receivers"] if r["name"] == "retrain-trigger"]
    [hook] = receiver["webhook_configs"]

    name, port = service["metadata"]["name"], service["spec"]["ports"][0]["port"]
    assert hook["url"] == f"http://{name}.{overlay['namespace']}.svc:{port}/alert"
    assert "../../components/retrain-trigger" in overlay["components"]


def test_both_tokens_are_files_from_secrets_and_alertmanager_presents_one(repo_root: Path):
    deployment = yaml.safe_load((repo_root / COMPONENT / "deployment.yaml").read_text())
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    secrets = {v["name"]: v["secret"]["secretName"] for v in pod["volumes"]}

    assert env["CHURNOPS_GITHUB_TOKEN_FILE"] == f"{mounts['github-token']}/token"
    assert env["CHURNOPS_WEBHOOK_TOKEN_FILE"] == f"{mounts['webhook-token']}/token"
    webhook_secret = secrets["webhook-token"]
    config = yaml.safe_load((repo_root / ALERTMANAGER_CONFIG).read_text())
    [receiver] = [r for r in config["receivers"] if r["name"] == "retrain-trigger"]
    [hook] = receiver["webhook_configs"]
    authorization = hook["http_config"]["authorization"]
    assert authorization["type"] == "Bearer"
    assert authorization["credentials_file"] == (
        f"/etc/alertmanager/secrets/{webhook_secret}/token"
    )
    assert container["image"] == "churnops-service"  # the overlay pins it by digest
    assert deployment["spec"]["replicas"] == 1  # one process decides; GitHub keeps the record


def test_every_rule_file_and_its_drill_version_pass_promtool(repo_root: Path, tmp_path: Path):
    groups = rule_groups(repo_root)
    files = {
        "production.yml": {"groups": groups},
        "drill.yml": drill_rules(groups, Timing()),
    }
    for name, content in files.items():
        (tmp_path / name).write_text(yaml.safe_dump(content))
    check = subprocess.run(
        [PROMTOOL, "check", "rules", *(str(tmp_path / n) for n in files)],
        capture_output=True,
        text=True,
    )

    assert check.returncode == 0, check.stdout + check.stderr
    alerts = {r["alert"] for g in groups for r in g["rules"] if "alert" in r}
    assert {
        "ChurnopsFeatureDrift",
        "ChurnopsChampionQualityLow",
        "ChurnopsLiveFairnessGap",
        "ChurnopsEstimatedQualityLow",
    } <= alerts


def test_quality_thresholds_are_the_release_gates(repo_root: Path):
    gate = load_params(repo_root / "params.yaml")["gate"]
    text = (repo_root / QUALITY_RULES).read_text()

    assert f'churnops_champion_quality{{metric="roc_auc"}}) < {gate["floors"]["roc_auc"]}' in text
    for metric in ("roc_auc", "f1"):  # the estimated metrics that have a floor
        floor = gate["floors"][metric]
        assert f'(churnops_estimated_performance{{metric="{metric}"}}) < {floor}\n' in text
    assert f") > {gate['ceilings']['demographic_parity_difference']}\n" in text


def test_the_dashboard_shows_the_estimate_at_the_gates_floor_prediction_drift_and_error(
    repo_root: Path,
):
    gate = load_params(repo_root / "params.yaml")["gate"]
    panels = json.loads((repo_root / DASHBOARD).read_text())["panels"]

    def showing(metric: str) -> list[dict]:
        return [p for p in panels if any(metric in t["expr"] for t in p.get("targets", []))]

    [estimate] = showing("churnops_estimated_performance")
    steps = estimate["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert steps[-1]["value"] == gate["floors"]["roc_auc"]
    assert showing("churnops_prediction_drift_psi")
    assert showing("churnops_champion_estimate_error")


def test_fairness_and_quality_alerts_fire_when_they_should(repo_root: Path, tmp_path: Path):
    manifest = yaml.safe_load((repo_root / QUALITY_RULES).read_text())
    rules = {"groups": manifest["spec"]["groups"]}
    (tmp_path / "quality.rules.yml").write_text(yaml.safe_dump(rules))
    shutil.copy(PROMTOOL_TESTS / "quality.test.yml", tmp_path)
    run = subprocess.run(
        [PROMTOOL, "test", "rules", "quality.test.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )

    assert run.returncode == 0, run.stdout + run.stderr


def test_drift_to_dispatch_worst_case_with_production_settings_is_under_5_minutes(
    repo_root: Path,
):
    steps = production_bound(repo_root)
    by_name = {what: value for what, value, _ in steps}

    assert by_name["Alertmanager group_wait"] == 30
    assert by_name["pending until `for` has passed, in whole evaluations"] >= 60
    assert sum(by_name.values()) < 300
