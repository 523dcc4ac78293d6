"""`churnops retrain-trigger`: turns Alertmanager's drift alert into one retraining run.

Alertmanager POSTs its webhook notifications to `/alert` (webhook.py: authenticated,
bounded, checked by notification.py). For a firing drift alert the trigger starts the
continuous-training workflow through GitHub's `workflow_dispatch` (inputs `reason: drift`,
the drifting features and the episodes), which needs a token with Actions read and
write on this repository and nothing else.

One drift episode gives one retrain: an episode (an alert's fingerprint and start time)
is dispatched at most once, and no new episode is dispatched within the cooldown of the
last dispatch, so an alert that flaps cannot start a storm of retrains. Both survive a
restart: the trigger reads them back from GitHub's record of the workflow's recent
dispatched runs, whose titles name their episodes; if GitHub cannot be asked, the
cooldown starts at start-up. A new episode suppressed by the cooldown is not
remembered: if it is still firing when Alertmanager repeats it after the cooldown, it is
dispatched then. Every decision is one log line and one count in `/metrics`.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
import time
import urllib.error
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from churnops import github
from churnops.retraining.notification import EPISODE, Notification
from churnops.retraining.webhook import make_server

log = logging.getLogger("churnops.retraining.trigger")

DRIFT_ALERT = "ChurnopsFeatureDrift"
DECISIONS = ("dispatched", "duplicate", "cooldown", "resolved", "ignored", "failed")
REJECTIONS = ("unauthorized", "no_length", "bad_length", "too_large", "timeout", "invalid_json")
REJECTIONS += ("not_a_notification", "busy", "not_found")
_REMEMBERED_EPISODES = 1000  # enough for months of episodes; bounds memory
_RECOVERED_RUNS = 30  # dispatched runs read back at start-up (one page)


@dataclass(frozen=True)
class TriggerConfig:
    """Where to dispatch and how often: every value has an environment variable (see main)."""

    repository: str
    token_file: Path
    webhook_token_file: Path
    workflow: str = "ct.yml"
    ref: str = "main"
    github_api_url: str = github.DEFAULT_API_URL
    cooldown_seconds: float = 3600.0
    alertname: str = DRIFT_ALERT
    timeout_seconds: float = 10.0

    def workflow_url(self) -> str:
        return (
            f"{self.github_api_url.rstrip('/')}/repos/{self.repository}"
            f"/actions/workflows/{quote(self.workflow, safe='')}"
        )


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
        self.rejected = Counter(
            "churnops_retrain_trigger_rejected_requests_total",
            "Webhook requests refused before any decision, by reason",
            ["reason"],
            registry=self.registry,
        )
        self.last_dispatch = Gauge(
            "churnops_retrain_trigger_last_dispatch_timestamp_seconds",
            "Unix time of the last workflow dispatch (0: none known)",
            registry=self.registry,
        )
        self.dispatch_duration = Histogram(
            "churnops_retrain_trigger_dispatch_duration_seconds",
            "Time of the workflow_dispatch call to GitHub's API",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.cooldown = Gauge(
            "churnops_retrain_trigger_cooldown_seconds",
            "Minimum time between two dispatches",
            registry=self.registry,
        )
        for status in ("firing", "resolved", "other"):
            self.notifications.labels(status)
        for decision in DECISIONS:
            self.decisions.labels(decision)
        for reason in REJECTIONS:
            self.rejected.labels(reason)


def _token(path: Path) -> str:
    """A token from its file, read at each use so a rotated Secret needs no restart."""
    token = path.read_text().strip()
    if not token:
        raise OSError(f"the token file {path} is empty")
    return token


class RetrainTrigger:
    """Decides, per Alertmanager notification, whether to request a retrain."""

    def __init__(
        self,
        config: TriggerConfig,
        metrics: TriggerMetrics | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.metrics = metrics or TriggerMetrics()
        self.metrics.cooldown.set(config.cooldown_seconds)
        self._clock = clock
        self._lock = threading.Lock()
        self._dispatched: OrderedDict[str, None] = OrderedDict()
        self._last_dispatch: float | None = None

    def webhook_token(self) -> str:
        return _token(self.config.webhook_token_file)

    def recover(self) -> None:
        """Read the last dispatch and its episodes back from GitHub's recent workflow runs."""
        url = (
            f"{self.config.workflow_url()}/runs?event=workflow_dispatch&per_page={_RECOVERED_RUNS}"
        )
        try:
            runs = github.request(
                "GET", url, _token(self.config.token_file), timeout=self.config.timeout_seconds
            )["workflow_runs"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            self._last_dispatch = self._clock()
            log.warning("recovery from GitHub failed (%s): the cooldown starts now", exc)
            return
        times = []
        for run in runs:
            title = str(run.get("display_title", ""))
            if "drift" not in title:
                continue
            times.append(datetime.fromisoformat(run["created_at"]).timestamp())
            self._remember(EPISODE.findall(title))
        self._last_dispatch = max(times, default=None)
        if self._last_dispatch is not None:
            self.metrics.last_dispatch.set(self._last_dispatch)
        log.info("recovered %d episode(s) from GitHub's recent runs", len(self._dispatched))

    def handle(self, notification: Notification) -> Decision:
        """Decide on one webhook notification, dispatch if due, count and log the decision."""
        self.metrics.notifications.labels(notification.status).inc()
        with self._lock:  # held through the GitHub call: two notifications never both dispatch
            decision = self._decide(notification)
        self.metrics.decisions.labels(decision.decision).inc()
        level = logging.WARNING if decision.decision == "failed" else logging.INFO
        log.log(level, decision.log_line())
        return decision

    def _decide(self, notification: Notification) -> Decision:
        ours = [a for a in notification.alerts if a.name == self.config.alertname]
        firing = [a for a in ours if a.firing]
        if not ours:
            return Decision("ignored", f"no {self.config.alertname} alert in the notification")
        if not firing:
            return Decision("resolved", "drift alert resolved", episodes=_episodes(ours))
        features = tuple(sorted({name for alert in firing for name in alert.features}))
        new = tuple(e for e in _episodes(firing) if e not in self._dispatched)
        if not new:
            return Decision("duplicate", "episode already dispatched", features, _episodes(firing))
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
            self._dispatch(features, new)
        except (OSError, urllib.error.URLError) as exc:  # HTTPError, a missing token file
            return Decision("failed", f"workflow_dispatch failed: {exc}", features, new)
        finally:
            self.metrics.dispatch_duration.observe(time.perf_counter() - started)
        self._last_dispatch = now
        self.metrics.last_dispatch.set(now)
        self._remember(new)
        return Decision(
            "dispatched",
            f"workflow_dispatch of {self.config.workflow} sent to {self.config.repository}",
            features,
            new,
        )

    def _dispatch(self, features: tuple[str, ...], episodes: tuple[str, ...]) -> None:
        """POST .../actions/workflows/{workflow}/dispatches; raises unless GitHub says 204."""
        inputs = {"reason": "drift", "features": ",".join(features), "episodes": " ".join(episodes)}
        github.request(
            "POST",
            f"{self.config.workflow_url()}/dispatches",
            _token(self.config.token_file),
            {"ref": self.config.ref, "inputs": inputs},
            timeout=self.config.timeout_seconds,
        )

    def _remember(self, episodes: tuple[str, ...] | list[str]) -> None:
        for episode in episodes:
            self._dispatched[episode] = None
        while len(self._dispatched) > _REMEMBERED_EPISODES:
            self._dispatched.popitem(last=False)


def _episodes(alerts: list) -> tuple[str, ...]:
    return tuple(dict.fromkeys(alert.episode for alert in alerts))


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
    parser.add_argument("--workflow", default=env("CHURNOPS_CT_WORKFLOW", "ct.yml"))
    parser.add_argument("--ref", default=env("CHURNOPS_CT_REF", "main"))
    parser.add_argument(
        "--token-file",
        type=Path,
        default=Path(env("CHURNOPS_GITHUB_TOKEN_FILE", "/var/run/secrets/github/token")),
        help="a GitHub token with Actions read and write on the repository (nothing more)",
    )
    parser.add_argument(
        "--webhook-token-file",
        type=Path,
        default=Path(env("CHURNOPS_WEBHOOK_TOKEN_FILE", "/var/run/secrets/webhook/token")),
        help="the bearer token Alertmanager must present (its http_config authorization)",
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
        webhook_token_file=args.webhook_token_file,
        workflow=args.workflow,
        ref=args.ref,
        github_api_url=args.github_api_url,
        cooldown_seconds=args.cooldown_seconds,
    )
    trigger = RetrainTrigger(config)
    try:
        trigger.webhook_token()
    except OSError as exc:
        raise SystemExit(
            f"retrain-trigger: no webhook token ({exc}): the webhook would accept anyone. "
            "Mount the Secret or pass --webhook-token-file."
        ) from None
    trigger.recover()
    metrics = trigger.metrics
    server = make_server(trigger, metrics.registry, metrics.rejected, args.host, args.port)
    log.info(
        "listening on %s:%d, dispatching %s of %s (cooldown %.0f s)",
        args.host,
        args.port,
        args.workflow,
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
