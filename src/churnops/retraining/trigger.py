"""`churnops retrain-trigger`: turns Alertmanager's drift alert into one retraining run.

Alertmanager POSTs its webhook notifications to `/alert`. For a firing drift alert the
trigger calls GitHub's `repository_dispatch` (event type `drift-detected`, the drifting
features in `client_payload`), which starts the continuous-training workflow.

One drift episode gives one retrain: an episode (an alert's fingerprint and start time)
is dispatched at most once, and no new episode is dispatched within the cooldown of the
last dispatch, so an alert that flaps cannot start a storm of retrains. A new episode
suppressed by the cooldown is not remembered: if it is still firing when Alertmanager
repeats it after the cooldown, it is dispatched then. Every decision is one log line and
one count in the trigger's own Prometheus metrics (`/metrics`).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from churnops import github

log = logging.getLogger("churnops.retraining.trigger")

EVENT_TYPE = "drift-detected"
DRIFT_ALERT = "ChurnopsFeatureDrift"
STATUSES = ("firing", "resolved")
DECISIONS = ("dispatched", "duplicate", "cooldown", "resolved", "ignored", "failed")
_REMEMBERED_EPISODES = 1000  # enough for months of episodes; bounds memory


@dataclass(frozen=True)
class TriggerConfig:
    """Where to dispatch and how often: every value has an environment variable (see main)."""

    repository: str
    token_file: Path
    github_api_url: str = github.DEFAULT_API_URL
    cooldown_seconds: float = 3600.0
    alertname: str = DRIFT_ALERT
    timeout_seconds: float = 10.0


@dataclass(frozen=True)
class Decision:
    """What the trigger did with one notification, and why."""

    decision: str
    reason: str
    features: tuple[str, ...] = ()
    episodes: tuple[str, ...] = ()

    def log_line(self) -> str:
        features = ",".join(self.features) or "-"
        episodes = ",".join(self.episodes) or "-"
        return (
            f"decision={self.decision} features={features} episodes={episodes} "
            f'reason="{self.reason}"'
        )


@dataclass
class TriggerMetrics:
    """The trigger's own metrics, in a registry of its own (no global state)."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.notifications = Counter(
            "churnops_retrain_trigger_notifications_total",
            "Alertmanager webhook notifications received, by group status",
            ["status"],
            registry=self.registry,
        )
        self.decisions = Counter(
            "churnops_retrain_trigger_decisions_total",
            "What the trigger decided per notification (dispatched = retrain requested)",
            ["decision"],
            registry=self.registry,
        )
        self.last_dispatch = Gauge(
            "churnops_retrain_trigger_last_dispatch_timestamp_seconds",
            "Unix time of the last successful repository_dispatch (0: none yet)",
            registry=self.registry,
        )
        self.dispatch_duration = Histogram(
            "churnops_retrain_trigger_dispatch_duration_seconds",
            "Time of the repository_dispatch call to GitHub's API",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.cooldown = Gauge(
            "churnops_retrain_trigger_cooldown_seconds",
            "Minimum time between two dispatches",
            registry=self.registry,
        )
        for status in (*STATUSES, "other"):
            self.notifications.labels(status)
        for decision in DECISIONS:
            self.decisions.labels(decision)


def split_features(text: str) -> list[str]:
    """Feature names from a label or annotation ("a,b", "a b" or one name)."""
    return [name for name in text.replace(",", " ").split() if name]


def drifting_features(alerts: Iterable[dict[str, Any]]) -> tuple[str, ...]:
    """Sorted feature names named by the alerts' `feature`/`features` labels or annotations."""
    names: set[str] = set()
    for alert in alerts:
        for source in (alert.get("labels", {}), alert.get("annotations", {})):
            for key in ("feature", "features"):
                names.update(split_features(str(source.get(key, ""))))
    return tuple(sorted(names))


def episode_key(alert: dict[str, Any]) -> str:
    """One drift episode: the alert's identity and the time it started firing."""
    return f"{alert.get('fingerprint', '?')}@{alert.get('startsAt', '?')}"


def repository_dispatch(
    config: TriggerConfig, features: tuple[str, ...], episodes: tuple[str, ...]
) -> None:
    """POST /repos/{owner}/{repo}/dispatches; raises on anything but a 2xx answer.

    The token is read at each call, so a rotated Secret needs no restart.
    """
    token = config.token_file.read_text().strip()
    body = {
        "event_type": EVENT_TYPE,
        "client_payload": {"features": list(features), "episodes": list(episodes)},
    }
    github.request(
        "POST",
        f"{config.github_api_url.rstrip('/')}/repos/{config.repository}/dispatches",
        token,
        body,
        timeout=config.timeout_seconds,
    )


class RetrainTrigger:
    """Decides, per Alertmanager notification, whether to request a retrain."""

    def __init__(
        self,
        config: TriggerConfig,
        metrics: TriggerMetrics | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.metrics = metrics or TriggerMetrics()
        self.metrics.cooldown.set(config.cooldown_seconds)
        self._clock = clock
        self._lock = threading.Lock()
        self._dispatched: OrderedDict[str, None] = OrderedDict()
        self._last_dispatch: float | None = None

    def handle(self, notification: dict[str, Any]) -> Decision:
        """Decide on one webhook notification, dispatch if due, count and log the decision."""
        status = notification.get("status")
        self.metrics.notifications.labels(status if status in STATUSES else "other").inc()
        with self._lock:  # held through the GitHub call: two notifications never both dispatch
            decision = self._decide(notification)
        self.metrics.decisions.labels(decision.decision).inc()
        level = logging.WARNING if decision.decision == "failed" else logging.INFO
        log.log(level, decision.log_line())
        return decision

    def _decide(self, notification: dict[str, Any]) -> Decision:
        ours = [
            a
            for a in notification.get("alerts", [])
            if a.get("labels", {}).get("alertname") == self.config.alertname
        ]
        firing = [a for a in ours if a.get("status") == "firing"]
        if not ours:
            return Decision("ignored", f"no {self.config.alertname} alert in the notification")
        if not firing:
            return Decision("resolved", "drift alert resolved", episodes=_keys(ours))
        features = drifting_features(firing)
        new = tuple(key for key in _keys(firing) if key not in self._dispatched)
        if not new:
            return Decision("duplicate", "episode already dispatched", features, _keys(firing))
        now = self._clock()
        if self._last_dispatch is not None:
            elapsed = now - self._last_dispatch
            if elapsed < self.config.cooldown_seconds:
                return Decision(
                    "cooldown",
                    f"last dispatch {elapsed:.0f} s ago, cooldown "
                    f"{self.config.cooldown_seconds:.0f} s",
                    features,
                    new,
                )
        started = time.perf_counter()
        try:
            repository_dispatch(self.config, features, new)
        except OSError as exc:  # URLError, HTTPError, a missing token file
            return Decision("failed", f"repository_dispatch failed: {exc}", features, new)
        finally:
            self.metrics.dispatch_duration.observe(time.perf_counter() - started)
        self._last_dispatch = now
        self.metrics.last_dispatch.set_to_current_time()
        for key in new:
            self._dispatched[key] = None
        while len(self._dispatched) > _REMEMBERED_EPISODES:
            self._dispatched.popitem(last=False)
        return Decision(
            "dispatched",
            f"repository_dispatch {EVENT_TYPE} sent to {self.config.repository}",
            features,
            new,
        )


def _keys(alerts: Iterable[dict[str, Any]]) -> tuple[str, ...]:
    return tuple(episode_key(a) for a in alerts)


def make_server(trigger: RetrainTrigger, host: str, port: int) -> ThreadingHTTPServer:
    """HTTP server: POST /alert (Alertmanager webhook), GET /metrics, GET /healthz."""

    class Handler(BaseHTTPRequestHandler):
        def _reply(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, payload: dict[str, Any]) -> None:
            self._reply(status, json.dumps(payload).encode(), "application/json")

        def do_GET(self) -> None:
            if self.path == "/metrics":
                self._reply(200, generate_latest(trigger.metrics.registry), CONTENT_TYPE_LATEST)
            elif self.path == "/healthz":
                self._json(200, {"status": "ok"})
            else:
                self._json(404, {"error": f"no such path: {self.path}"})

        def do_POST(self) -> None:
            if self.path != "/alert":
                self._json(404, {"error": f"no such path: {self.path}"})
                return
            length = int(self.headers.get("Content-Length") or 0)
            try:
                notification = json.loads(self.rfile.read(length))
                if not isinstance(notification, dict):
                    raise ValueError("the body must be a JSON object")
            except ValueError as exc:
                self._json(400, {"error": f"not an Alertmanager notification: {exc}"})
                return
            decision = trigger.handle(notification)
            # 503 makes Alertmanager retry the notification when GitHub could not be reached.
            status = 503 if decision.decision == "failed" else 200
            self._json(status, {"decision": decision.decision, "reason": decision.reason})

        def log_message(self, format: str, *args: Any) -> None:
            log.debug(format, *args)

    return ThreadingHTTPServer((host, port), Handler)


def _parser() -> argparse.ArgumentParser:
    env = os.environ.get
    parser = argparse.ArgumentParser(
        prog="churnops retrain-trigger",
        description="Alertmanager webhook receiver that requests a retrain on drift.",
    )
    parser.add_argument("--host", default=env("CHURNOPS_TRIGGER_HOST", "0.0.0.0"))
    parser.add_argument("--port", type=int, default=int(env("CHURNOPS_TRIGGER_PORT", "8080")))
    parser.add_argument(
        "--repository",
        default=env("CHURNOPS_GITHUB_REPOSITORY"),
        help="owner/name of the repository whose CT workflow to start",
    )
    parser.add_argument(
        "--token-file",
        type=Path,
        default=Path(env("CHURNOPS_GITHUB_TOKEN_FILE", "/var/run/secrets/github/token")),
        help="file holding a GitHub token allowed to create repository_dispatch events",
    )
    parser.add_argument(
        "--github-api-url", default=env("CHURNOPS_GITHUB_API_URL", github.DEFAULT_API_URL)
    )
    parser.add_argument(
        "--cooldown-seconds",
        type=float,
        default=float(env("CHURNOPS_RETRAIN_COOLDOWN_SECONDS", "3600")),
    )
    return parser


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    if not args.repository:
        raise SystemExit("retrain-trigger: set --repository or CHURNOPS_GITHUB_REPOSITORY")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    config = TriggerConfig(
        repository=args.repository,
        token_file=args.token_file,
        github_api_url=args.github_api_url,
        cooldown_seconds=args.cooldown_seconds,
    )
    server = make_server(RetrainTrigger(config), args.host, args.port)
    log.info(
        "listening on %s:%d, dispatching to %s (cooldown %.0f s)",
        args.host,
        args.port,
        args.repository,
        args.cooldown_seconds,
    )
    # Kubernetes stops pods with SIGTERM: treat it as Ctrl-C, so server_close() below
    # waits for the requests in flight and the process exits 0.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        log.info("stopping: signal received")
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
