"""The drift drill: the whole drift-to-retrain loop with real processes on loopback.

The churn service (`bentoml serve`), Prometheus and Alertmanager (Debian's packages)
loaded with the project's own rule and routing files from k8s/monitoring/, the retrain
trigger (`python -m churnops.retraining.trigger`), and a local stand-in for GitHub's API
(the one mock: GitHub cannot be reached from here). Only timings are shortened: scrape
and rule evaluation every second, the alerts' `for:` and Alertmanager's grouping waits
to seconds (`Timing.production` keeps production's instead). `production_bound` computes
the same path's worst case with the production settings read from the same files.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from inspect import signature
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import yaml
from prometheus_client.parser import text_string_to_metric_families

from churnops import schema, snapshots
from churnops.config import load_params
from churnops.retraining.trigger import DRIFT_ALERT, TriggerConfig
from churnops.serving.metrics import ServingMetrics
from churnops.ui.client import KEEP_ALIVE
from tests.support.github_standin import GitHubStandIn
from tests.support.net import free_port, wait_until

MONITORING = Path("k8s/monitoring")
ALERTMANAGER_CONFIG = MONITORING / "alertmanager.yaml"
SERVICE_MONITOR = MONITORING / "servicemonitor.yaml"
PROMETHEUS = "/usr/bin/prometheus"
ALERTMANAGER = "/usr/bin/prometheus-alertmanager"
PROMTOOL = "/usr/bin/promtool"
# prometheus-operator's default evaluation interval, used when a rule group sets none.
OPERATOR_EVALUATION_INTERVAL = "30s"
BATCH = 25  # customers per request
PACE_SECONDS = 0.1  # between requests: 250 customers/s, the drift window turns over in 2 s
DRILL_BOUND_SECONDS = 60.0  # drift onset to dispatch with the drill's timings (about 7 s)


@dataclass(frozen=True)
class Timing:
    """The drill's intervals; None keeps the value in the project's files."""

    scrape_interval: str = "1s"
    evaluation_interval: str = "1s"
    alert_for: str | None = "3s"
    group_wait: str | None = "1s"
    group_interval: str | None = "2s"
    repeat_interval: str | None = "3s"
    cooldown_seconds: float = 600.0
    storm_check: bool = True  # needs a short repeat_interval

    @classmethod
    def production(cls, repo_root: Path) -> Timing:
        """Production's settings: the ServiceMonitor's scrape, the operator's evaluation."""
        monitor = yaml.safe_load((repo_root / SERVICE_MONITOR).read_text())
        return cls(
            scrape_interval=monitor["spec"]["endpoints"][0]["interval"],
            evaluation_interval=OPERATOR_EVALUATION_INTERVAL,
            alert_for=None,
            group_wait=None,
            group_interval=None,
            repeat_interval=None,
            storm_check=False,
        )


def seconds(duration: str) -> float:
    """A Prometheus duration ("1m30s", "15s", "500ms") in seconds."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    parts = re.findall(r"(\d+)(ms|s|m|h|d|w)", duration)
    if not parts or "".join(n + u for n, u in parts) != duration:
        raise ValueError(f"not a Prometheus duration: {duration!r}")
    return sum(int(n) * units[u] for n, u in parts)


def rule_groups(repo_root: Path) -> list[dict[str, Any]]:
    """spec.groups of every PrometheusRule in k8s/monitoring/, as a rule file wants them."""
    return [
        group
        for path in sorted((repo_root / MONITORING).glob("*.yaml"))
        for document in yaml.safe_load_all(path.read_text())
        if document and document.get("kind") == "PrometheusRule"
        for group in document["spec"]["groups"]
    ]


def drill_rules(groups: list[dict[str, Any]], timing: Timing) -> dict[str, Any]:
    """The rule groups with every alert's `for:` and every group's interval shortened."""
    shortened = []
    for group in groups:
        rules = [
            {**rule, "for": timing.alert_for} if "for" in rule and timing.alert_for else rule
            for rule in group["rules"]
        ]
        shortened.append({**group, "interval": timing.evaluation_interval, "rules": rules})
    return {"groups": shortened}


def drill_alertmanager(
    config: dict[str, Any], trigger_url: str, token_file: Path, timing: Timing
) -> dict[str, Any]:
    """The routing file with shortened grouping waits and webhooks pointed at the trigger,
    authenticated with the drill's token file."""

    def shorten(route: dict[str, Any]) -> dict[str, Any]:
        route = dict(route)
        for key in ("group_wait", "group_interval", "repeat_interval"):
            if key in route and getattr(timing, key):
                route[key] = getattr(timing, key)
        if "routes" in route:
            route["routes"] = [shorten(child) for child in route["routes"]]
        return route

    receivers = []
    for receiver in config["receivers"]:
        hooks = [
            {
                **hook,
                "url": f"{trigger_url}/alert",
                "http_config": {
                    "authorization": {
                        **hook["http_config"]["authorization"],
                        "credentials_file": str(token_file),
                    }
                },
            }
            for hook in receiver.get("webhook_configs", [])
            if hook["url"].endswith("/alert")
        ]
        receivers.append({**receiver, **({"webhook_configs": hooks} if hooks else {})})
    return {**config, "route": shorten(config["route"]), "receivers": receivers}


def drift_route(config: dict[str, Any]) -> dict[str, Any]:
    """The route production's drift alert takes to the trigger, with inherited settings."""
    root = config["route"]
    for child in root.get("routes", []):
        if any(DRIFT_ALERT in m for m in child.get("matchers", [])):
            return {**root, **child}
    raise LookupError(f"no route for {DRIFT_ALERT} in the Alertmanager configuration")


def production_bound(repo_root: Path) -> list[tuple[str, float, str]]:
    """Worst case from drift in the service's window to GitHub's dispatch, per step.

    Each step is (what, seconds, where the number comes from), read from the files that
    configure production, so the bound follows any change to them.
    """
    endpoint = yaml.safe_load((repo_root / SERVICE_MONITOR).read_text())["spec"]["endpoints"][0]
    [alerts] = [
        g for g in rule_groups(repo_root) if any(r.get("alert") == DRIFT_ALERT for r in g["rules"])
    ]
    [rule] = [r for r in alerts["rules"] if r.get("alert") == DRIFT_ALERT]
    evaluation = seconds(alerts.get("interval", OPERATOR_EVALUATION_INTERVAL))
    pending = seconds(rule["for"])
    route = drift_route(yaml.safe_load((repo_root / ALERTMANAGER_CONFIG).read_text()))
    refresh = signature(ServingMetrics).parameters["refresh_seconds"].default
    timeout = signature(TriggerConfig).parameters["timeout_seconds"].default
    return [
        ("service recomputes drift (refresh_seconds)", refresh, "src/churnops/serving/metrics.py"),
        ("next scrape (interval)", seconds(endpoint["interval"]), str(SERVICE_MONITOR)),
        ("scrape takes (scrapeTimeout)", seconds(endpoint["scrapeTimeout"]), str(SERVICE_MONITOR)),
        ("next rule evaluation", evaluation, "rule group interval or operator default"),
        (
            "pending until `for` has passed, in whole evaluations",
            -(-pending // evaluation) * evaluation,
            "k8s/monitoring PrometheusRule",
        ),
        ("Alertmanager group_wait", seconds(route["group_wait"]), str(ALERTMANAGER_CONFIG)),
        ("trigger's GitHub call (timeout)", timeout, "src/churnops/retraining/trigger.py"),
    ]


def customers(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as the API's JSON customers: ints for binaries, None for missing numbers."""
    features = schema.features_frame(frame)
    rows = []
    for record in features.to_dict(orient="records"):
        customer = {}
        for feature in schema.FEATURES:
            value = record[feature.name]
            if feature.kind == "binary":
                customer[feature.name] = int(value)
            elif feature.kind == "numeric":
                customer[feature.name] = None if pd.isna(value) else float(value)
            else:
                customer[feature.name] = value
        rows.append(customer)
    return rows


def drifted(frame: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """The same customers after a 20% price rise and with 60% moved to monthly contracts."""
    out = frame.copy()
    out["monthly_charges"] = (out["monthly_charges"] * 1.2).round(2)
    out["total_charges"] = (out["total_charges"] * 1.2).round(2)
    moved = np.random.default_rng(seed).random(len(out)) < 0.6
    out.loc[moved, "contract"] = "Month-to-month"
    return out


class Processes:
    """Real processes, each in its own session so that stopping one stops its children."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.started: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, argv: list[str], **kwargs: Any) -> None:
        log = (self.workdir / f"{name}.log").open("wb")
        process = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, **kwargs
        )
        self.started.append((name, process))

    def check_alive(self) -> None:
        for name, process in self.started:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited ({process.returncode}):\n{self.log_tail(name)}")

    def log_tail(self, name: str, lines: int = 30) -> str:
        text = (self.workdir / f"{name}.log").read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def stop_all(self) -> None:
        for _, process in reversed(self.started):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for _, process in reversed(self.started):
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@dataclass
class Loop:
    service: str
    trigger: str
    prometheus: str
    alertmanager: str
    github: GitHubStandIn
    processes: Processes
    serve: dict[str, Any]
    client: httpx.Client

    def predict(self, batch: list[dict[str, Any]]) -> httpx.Response:
        response = self.client.post(f"{self.service}/predict", json={"customers": batch})
        response.raise_for_status()
        return response

    def metric(self, url: str, name: str) -> float | None:
        """The value of an unlabelled sample on a process's /metrics page."""
        for family in text_string_to_metric_families(self.client.get(f"{url}/metrics").text):
            for sample in family.samples:
                if sample.name == name:
                    return sample.value
        return None

    def decisions(self) -> dict[str, int]:
        text = self.client.get(f"{self.trigger}/metrics").text
        return {
            s.labels["decision"]: int(s.value)
            for f in text_string_to_metric_families(text)
            for s in f.samples
            if s.name == "churnops_retrain_trigger_decisions_total"
        }

    def alert_state(self) -> str:
        """The drift alert's state in Prometheus: inactive, pending or firing."""
        alerts = self.client.get(f"{self.prometheus}/api/v1/alerts").json()["data"]["alerts"]
        states = {a["state"] for a in alerts if a["labels"]["alertname"] == DRIFT_ALERT}
        return "firing" if "firing" in states else "pending" if states else "inactive"


def _write_yaml(path: Path, payload: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(payload, sort_keys=False))
    return path


@contextmanager
def running_loop(repo_root: Path, workdir: Path, timing: Timing = Timing()) -> Iterator[Loop]:
    """Start every process of the loop on free loopback ports; stop them all on exit."""
    bin_dir = Path(sys.executable).parent
    ports = {name: free_port() for name in ("service", "trigger", "prometheus", "alertmanager")}
    url = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    processes = Processes(workdir)
    token = workdir / "github-token"
    token.write_text("drill-token\n")
    webhook_token = workdir / "webhook-token"
    webhook_token.write_text("drill-webhook-token\n")
    rules = _write_yaml(workdir / "rules.yml", drill_rules(rule_groups(repo_root), timing))
    subprocess.run([PROMTOOL, "check", "rules", str(rules)], check=True, capture_output=True)
    routing = yaml.safe_load((repo_root / ALERTMANAGER_CONFIG).read_text())
    am_config = _write_yaml(
        workdir / "alertmanager.yml",
        drill_alertmanager(routing, url["trigger"], webhook_token, timing),
    )
    # The operator adds `namespace` to every scraped series; the drill plays production.
    labels = {"namespace": "churnops-production"}
    prom_config = _write_yaml(
        workdir / "prometheus.yml",
        {
            "global": {
                "scrape_interval": timing.scrape_interval,
                "evaluation_interval": timing.evaluation_interval,
            },
            "rule_files": [str(rules)],
            "alerting": {
                "alertmanagers": [
                    {"static_configs": [{"targets": [f"127.0.0.1:{ports['alertmanager']}"]}]}
                ]
            },
            "scrape_configs": [
                {
                    "job_name": name,
                    "static_configs": [{"targets": [f"127.0.0.1:{ports[name]}"], "labels": labels}],
                }
                for name in ("service", "trigger")
            ],
        },
    )
    with GitHubStandIn() as github, httpx.Client(timeout=10, limits=KEEP_ALIVE) as client:
        try:
            processes.start(
                "service",
                [
                    str(bin_dir / "bentoml"),
                    "serve",
                    "churnops.serving.service:Churnops",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(ports["service"]),
                ],
                cwd=repo_root,
                env={
                    **os.environ,
                    "PATH": f"{bin_dir}:{os.environ['PATH']}",
                    "BENTOML_HOME": str(workdir / "bentoml"),
                    "CHURNOPS_MODEL_DIR": str(repo_root / "models"),
                    "BENTOML_DO_NOT_TRACK": "True",
                },
            )
            processes.start(
                "trigger",
                [
                    sys.executable,
                    "-m",
                    "churnops.retraining.trigger",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(ports["trigger"]),
                    "--repository",
                    "churnops/churnops",
                    "--token-file",
                    str(token),
                    "--webhook-token-file",
                    str(webhook_token),
                    "--github-api-url",
                    github.url,
                    "--cooldown-seconds",
                    str(timing.cooldown_seconds),
                ],
                cwd=repo_root,
            )
            processes.start(
                "alertmanager",
                [
                    ALERTMANAGER,
                    f"--config.file={am_config}",
                    f"--storage.path={workdir / 'alertmanager-data'}",
                    f"--web.listen-address=127.0.0.1:{ports['alertmanager']}",
                    "--cluster.listen-address=",
                ],
            )
            processes.start(
                "prometheus",
                [
                    PROMETHEUS,
                    f"--config.file={prom_config}",
                    f"--storage.tsdb.path={workdir / 'prometheus-data'}",
                    f"--web.listen-address=127.0.0.1:{ports['prometheus']}",
                ],
            )
            loop = Loop(
                url["service"],
                url["trigger"],
                url["prometheus"],
                url["alertmanager"],
                github,
                processes,
                load_params(repo_root / "params.yaml")["serve"],
                client,
            )
            for name, path in (
                ("trigger", "/healthz"),
                ("alertmanager", "/-/ready"),
                ("prometheus", "/-/ready"),
                ("service", "/readyz"),
            ):

                def ready(name: str = name, path: str = path) -> bool:
                    processes.check_alive()
                    try:
                        return loop.client.get(f"{url[name]}{path}").status_code == 200
                    except httpx.TransportError:
                        return False

                wait_until(ready, 120, f"{name} ready")
            yield loop
        finally:
            processes.stop_all()


@dataclass
class DrillResult:
    onset_to_detected: float
    onset_to_firing: float
    onset_to_dispatch: float
    dispatches: int
    decisions: dict[str, int]
    features: list[str]


def _say(message: str) -> None:
    print(f"drift-drill: {message}", flush=True)


def _send_until(
    loop: Loop, pool: list[dict[str, Any]], done: Callable[[], bool], timeout: float, what: str
) -> None:
    """Keep sending batches from the pool, round-robin, until `done()` or the timeout."""
    deadline = time.monotonic() + timeout
    position = 0
    while not done():
        if time.monotonic() > deadline:
            loop.processes.check_alive()
            raise TimeoutError(f"{what} did not happen within {timeout:.0f} s")
        batch = [pool[(position + i) % len(pool)] for i in range(BATCH)]
        position += BATCH
        loop.predict(batch)
        time.sleep(PACE_SECONDS)


def run_drill(loop: Loop, repo_root: Path, timing: Timing, bound_seconds: float) -> DrillResult:
    """Normal traffic, then drift; measure onset to dispatch; then check for a storm."""
    # Normal traffic is the population the model was trained on: every snapshot in data/.
    sample = snapshots.read_snapshots(repo_root / "data").sample(n=1000, random_state=0)
    normal, shifted = customers(sample), customers(drifted(sample))
    window = int(loop.serve["drift_window"])
    calm_seconds = 6.0  # with the drill's timings, longer than `for:` and group_wait

    _say(f"normal traffic: {window} customers to fill the drift window")
    _send_until(
        loop,
        normal,
        lambda: (loop.metric(loop.service, "churnops_drift_window_customers") or 0) >= window,
        30,
        "drift window filled",
    )
    _say(f"normal traffic for {calm_seconds:.0f} s more: no alert expected")
    calm_until = time.monotonic() + calm_seconds
    _send_until(loop, normal, lambda: time.monotonic() > calm_until, calm_seconds + 10, "calm")
    if loop.metric(loop.service, "churnops_drift_detected") != 0 or loop.github.count():
        raise AssertionError("normal traffic raised drift or a dispatch")
    if loop.alert_state() != "inactive":
        raise AssertionError(f"normal traffic left the drift alert {loop.alert_state()}")

    _say("drifted traffic (price +20%, 60% moved to month-to-month contracts) starts now")
    onset = time.monotonic()
    marks: dict[str, float] = {}

    def progress() -> bool:
        now = time.monotonic() - onset
        if "detected" not in marks and loop.metric(loop.service, "churnops_drift_detected") == 1:
            marks["detected"] = now
            _say(f"+{now:5.1f} s  service: churnops_drift_detected = 1")
        if "firing" not in marks and loop.alert_state() == "firing":
            marks["firing"] = now
            _say(f"+{now:5.1f} s  Prometheus: {DRIFT_ALERT} firing")
        return loop.github.count() > 0

    _send_until(loop, shifted, progress, bound_seconds, "dispatch after drift")
    first = loop.github.dispatches[0]  # more would be a storm: the caller counts them
    to_dispatch = first.arrived - onset
    features = first.body["inputs"]["features"].split(",")
    _say(f"+{to_dispatch:5.1f} s  GitHub stand-in: workflow_dispatch of ct.yml, {features}")

    if timing.storm_check:
        _storm_check(loop, normal, shifted, seconds(timing.repeat_interval or "0s") * 3)
    decisions = loop.decisions()
    _say(f"trigger decisions: {decisions}; dispatches recorded: {loop.github.count()}")
    return DrillResult(
        onset_to_detected=marks.get("detected", float("nan")),
        onset_to_firing=marks.get("firing", float("nan")),
        onset_to_dispatch=to_dispatch,
        dispatches=loop.github.count(),
        decisions=decisions,
        features=features,
    )


def _storm_check(
    loop: Loop, normal: list[dict[str, Any]], shifted: list[dict[str, Any]], repeats: float
) -> None:
    """Drift goes on (Alertmanager repeats the alert), then the alert flaps."""
    _say(f"storm check: drift goes on for {repeats:.0f} s (Alertmanager repeats the alert)")
    until = time.monotonic() + repeats
    _send_until(loop, shifted, lambda: time.monotonic() > until, repeats + 10, "repeats")
    _say("flap: normal traffic until the alert resolves, then drift again")
    _send_until(
        loop, normal, lambda: loop.decisions().get("resolved", 0) >= 1, 60, "alert resolved"
    )
    _send_until(
        loop, shifted, lambda: loop.decisions().get("cooldown", 0) >= 1, 60, "re-fired alert"
    )


def report_bound(repo_root: Path) -> float:
    """Print the production worst case, step by step; return its total in seconds."""
    steps = production_bound(repo_root)
    _say("worst case with production settings:")
    for what, value, source in steps:
        _say(f"  {value:6.0f} s  {what}  [{source}]")
    total = sum(value for _, value, _ in steps)
    _say(f"  {total:6.0f} s  total (target: under 300 s)")
    return total


def result_json(result: DrillResult) -> str:
    return json.dumps(result.__dict__, indent=2, sort_keys=True)
