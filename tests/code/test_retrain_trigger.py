"""The retrain trigger over real HTTP on loopback: decisions, de-duplication, cooldown, metrics.

GitHub's API is the one thing mocked (tests/support/github_standin.py): it cannot be
reached from here. The trigger runs as its real HTTP server in a thread.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from churnops.retraining.trigger import (
    EVENT_TYPE,
    RetrainTrigger,
    TriggerConfig,
    drifting_features,
    make_server,
)
from tests.support.github_standin import GitHubStandIn

TOKEN = "ghs_test_token_from_a_file"
COOLDOWN = 600.0


class FakeClock:
    """Monotonic time the test moves forward, so a cooldown needs no waiting."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Running:
    url: str
    github: GitHubStandIn
    clock: FakeClock
    token_file: Path

    def alert(self, notification: dict[str, Any]) -> httpx.Response:
        return httpx.post(f"{self.url}/alert", json=notification, timeout=10)

    def decisions(self) -> dict[str, float]:
        text = httpx.get(f"{self.url}/metrics", timeout=10).text
        return {
            sample.labels["decision"]: sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "churnops_retrain_trigger_decisions_total"
        }


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    clock = FakeClock()
    with GitHubStandIn() as github:
        config = TriggerConfig(
            repository="churnops/churnops",
            token_file=token_file,
            github_api_url=github.url,
            cooldown_seconds=COOLDOWN,
        )
        server = make_server(RetrainTrigger(config, clock=clock), "127.0.0.1", 0)
        thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        try:
            url = f"http://127.0.0.1:{server.server_address[1]}"
            yield Running(url, github, clock, token_file)
        finally:
            server.shutdown()
            server.server_close()
            thread.join()


def drift_alert(status: str, starts_at: str, features: str = "contract,monthly_charges") -> dict:
    return {
        "status": status,
        "labels": {"alertname": "ChurnopsFeatureDrift", "severity": "warning"},
        "annotations": {"features": features},
        "startsAt": starts_at,
        "fingerprint": "4f0c1e2d3b4a5968",
    }


def notification(*alerts: dict[str, Any]) -> dict[str, Any]:
    """An Alertmanager webhook body (version 4), as its webhook receiver sends it."""
    firing = any(a["status"] == "firing" for a in alerts)
    return {
        "version": "4",
        "receiver": "retrain-trigger",
        "status": "firing" if firing else "resolved",
        "groupKey": '{}/{alertname="ChurnopsFeatureDrift"}:{alertname="ChurnopsFeatureDrift"}',
        "alerts": list(alerts),
    }


FIRST = "2026-11-27T10:00:00Z"
SECOND = "2026-11-27T10:03:00Z"


def test_firing_drift_alert_dispatches_once_with_the_features_and_the_token(running: Running):
    response = running.alert(notification(drift_alert("firing", FIRST)))

    assert response.status_code == 200
    assert response.json()["decision"] == "dispatched"
    [dispatch] = running.github.dispatches
    assert dispatch.path == "/repos/churnops/churnops/dispatches"
    assert dispatch.authorization == f"Bearer {TOKEN}"
    assert dispatch.body["event_type"] == EVENT_TYPE == "drift-detected"
    assert dispatch.body["client_payload"]["features"] == ["contract", "monthly_charges"]


def test_repeated_notifications_of_one_episode_give_one_dispatch(running: Running):
    for _ in range(3):  # Alertmanager repeats a firing group every repeat_interval
        running.alert(notification(drift_alert("firing", FIRST)))
        running.clock.now += COOLDOWN * 2  # even long after the cooldown

    assert running.github.count() == 1
    assert running.decisions()["duplicate"] == 2


def test_a_flapping_alert_within_the_cooldown_gives_no_second_dispatch(running: Running):
    running.alert(notification(drift_alert("firing", FIRST)))
    running.clock.now += 60
    resolved = running.alert(notification(drift_alert("resolved", FIRST)))
    running.clock.now += 60
    refired = running.alert(notification(drift_alert("firing", SECOND)))

    assert resolved.json()["decision"] == "resolved"
    assert refired.json()["decision"] == "cooldown"
    assert running.github.count() == 1


def test_a_new_episode_after_the_cooldown_dispatches_again(running: Running):
    running.alert(notification(drift_alert("firing", FIRST)))
    running.clock.now += COOLDOWN + 1
    again = running.alert(notification(drift_alert("firing", SECOND, features="tenure")))

    assert again.json()["decision"] == "dispatched"
    assert [d.body["client_payload"]["features"] for d in running.github.dispatches] == [
        ["contract", "monthly_charges"],
        ["tenure"],
    ]


def test_github_failure_answers_503_so_alertmanager_retries_and_the_retry_dispatches(
    running: Running,
):
    running.github.fail_with = 502
    failed = running.alert(notification(drift_alert("firing", FIRST)))
    running.github.fail_with = None
    retried = running.alert(notification(drift_alert("firing", FIRST)))

    assert failed.status_code == 503
    assert failed.json()["decision"] == "failed"
    assert retried.json()["decision"] == "dispatched"
    assert running.github.count() == 1


def test_a_missing_token_file_fails_the_dispatch_loudly(running: Running):
    running.token_file.unlink()  # the Secret is not mounted

    response = running.alert(notification(drift_alert("firing", FIRST)))

    assert response.status_code == 503
    assert "token" in response.json()["reason"]
    assert running.github.count() == 0


def test_other_alerts_are_ignored_and_bad_bodies_rejected(running: Running):
    other = {**drift_alert("firing", FIRST), "labels": {"alertname": "ChurnopsHighErrorRate"}}
    ignored = running.alert(notification(other))
    bad = httpx.post(f"{running.url}/alert", content=b"not json", timeout=10)

    assert ignored.json()["decision"] == "ignored"
    assert bad.status_code == 400
    assert running.github.count() == 0


def test_every_decision_is_counted_and_logged(running: Running, caplog: pytest.LogCaptureFixture):
    with caplog.at_level(logging.INFO, logger="churnops.retraining.trigger"):
        running.alert(notification(drift_alert("firing", FIRST)))
        running.alert(notification(drift_alert("firing", FIRST)))

    lines = [r.getMessage() for r in caplog.records if r.name == "churnops.retraining.trigger"]
    assert [line.split()[0] for line in lines] == ["decision=dispatched", "decision=duplicate"]
    assert "features=contract,monthly_charges" in lines[0]
    counts = running.decisions()
    assert counts["dispatched"] == 1
    assert counts["duplicate"] == 1
    assert counts["cooldown"] == 0  # every decision is exported, even before it happens


def test_drifting_features_come_from_labels_or_annotations():
    alerts = [
        {"labels": {"feature": "tenure"}},
        {"annotations": {"features": "contract, monthly_charges"}},
        {"labels": {"features": "contract"}},
    ]

    assert drifting_features(alerts) == ("contract", "monthly_charges", "tenure")
