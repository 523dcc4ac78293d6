"""The retrain trigger over real HTTP on loopback: decisions, de-duplication, cooldown,
recovery after a restart, and a hostile corpus of webhook requests.

GitHub's API is the one thing mocked (tests/support/github_standin.py): it cannot be
reached from here. The trigger runs as its real HTTP server in a thread.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from churnops.retraining import webhook
from churnops.retraining.notification import known_features
from churnops.retraining.trigger import RetrainTrigger, TriggerConfig
from tests.support.github_standin import GitHubStandIn

TOKEN = "ghs_test_token_from_a_file"
WEBHOOK_TOKEN = "alertmanager-shared-secret"
COOLDOWN = 600.0


class FakeClock:
    """Wall time the test moves forward, so a cooldown needs no waiting."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@dataclass
class Running:
    url: str
    github: GitHubStandIn
    clock: FakeClock
    token_file: Path
    trigger: RetrainTrigger

    def alert(self, notification: dict[str, Any], token: str = WEBHOOK_TOKEN) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"}
        return httpx.post(f"{self.url}/alert", json=notification, headers=headers, timeout=10)

    def counts(self, name: str, label: str) -> dict[str, float]:
        text = httpx.get(f"{self.url}/metrics", timeout=10).text
        return {
            sample.labels[label]: sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == name
        }

    def decisions(self) -> dict[str, float]:
        return self.counts("churnops_retrain_trigger_decisions_total", "decision")

    def rejections(self) -> dict[str, float]:
        return self.counts("churnops_retrain_trigger_rejected_requests_total", "reason")


def serve(trigger: RetrainTrigger) -> tuple[Any, threading.Thread, str]:
    metrics = trigger.metrics
    server = webhook.make_server(trigger, metrics.registry, metrics.rejected, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    return server, thread, f"http://127.0.0.1:{server.server_address[1]}"


def config(tmp_path: Path, github: GitHubStandIn) -> TriggerConfig:
    return TriggerConfig(
        repository="churnops/churnops",
        token_file=tmp_path / "token",
        webhook_token_file=tmp_path / "webhook-token",
        github_api_url=github.url,
        cooldown_seconds=COOLDOWN,
    )


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    (tmp_path / "token").write_text(TOKEN + "\n")
    (tmp_path / "webhook-token").write_text(WEBHOOK_TOKEN + "\n")
    clock = FakeClock()
    with GitHubStandIn(token=TOKEN) as github:
        trigger = RetrainTrigger(config(tmp_path, github), clock=clock)
        trigger.recover()
        server, thread, url = serve(trigger)
        try:
            yield Running(url, github, clock, tmp_path / "token", trigger)
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
    assert dispatch.path == "/repos/churnops/churnops/actions/workflows/ct.yml/dispatches"
    assert dispatch.authorization == f"Bearer {TOKEN}"
    assert dispatch.body["ref"] == "main"
    assert dispatch.body["inputs"] == {
        "reason": "drift",
        "features": "contract,monthly_charges",
        "episodes": f"4f0c1e2d3b4a5968@{FIRST}",
    }


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
    assert [d.body["inputs"]["features"] for d in running.github.dispatches] == [
        "contract,monthly_charges",
        "tenure",
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


def test_other_alerts_are_ignored(running: Running):
    other = {**drift_alert("firing", FIRST), "labels": {"alertname": "ChurnopsHighErrorRate"}}
    ignored = running.alert(notification(other))

    assert ignored.json()["decision"] == "ignored"
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


def test_only_the_schemas_feature_names_are_kept():
    texts = ["tenure", "contract, monthly_charges", "contract", "x\ny\rFAKE", "$(rm -rf)", 7]

    assert known_features(texts) == ("contract", "monthly_charges", "tenure")


def test_a_restarted_trigger_keeps_the_cooldown_and_the_episodes_it_dispatched(
    running: Running, tmp_path: Path
):
    running.alert(notification(drift_alert("firing", FIRST)))
    restarted = RetrainTrigger(running.trigger.config, clock=running.clock)
    restarted.recover()  # from GitHub's record of the workflow's dispatched runs
    server, thread, url = serve(restarted)
    try:
        again = Running(url, running.github, running.clock, running.token_file, restarted)
        duplicate = again.alert(notification(drift_alert("firing", FIRST)))
        flapped = again.alert(notification(drift_alert("firing", SECOND)))
    finally:
        server.shutdown()
        server.server_close()
        thread.join()

    assert duplicate.json()["decision"] == "duplicate"
    assert flapped.json()["decision"] == "cooldown"
    assert running.github.count() == 1


def test_when_github_cannot_be_asked_the_cooldown_starts_at_start_up(tmp_path: Path):
    (tmp_path / "token").write_text(TOKEN)
    with GitHubStandIn(token="another-token") as github:  # 401 Bad credentials
        clock = FakeClock()
        trigger = RetrainTrigger(config(tmp_path, github), clock=clock)
        trigger.recover()
    assert trigger._last_dispatch == clock.now


def raw(running: Running, request: bytes, timeout: float = 15) -> bytes:
    """Send raw bytes to the webhook; what it answers before closing."""
    port = int(running.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as connection:
        connection.sendall(request)
        chunks = []
        while chunk := connection.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def post(body: bytes, *headers: str, token: str = WEBHOOK_TOKEN) -> bytes:
    lines = ["POST /alert HTTP/1.1", "Host: t", f"Authorization: Bearer {token}", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def sized(body: bytes, token: str = WEBHOOK_TOKEN) -> bytes:
    return post(body, f"Content-Length: {len(body)}", token=token)


def status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


VALID = json.dumps(notification(drift_alert("firing", FIRST))).encode()
HOSTILE = [
    ("no token", sized(VALID, token=""), 401, "unauthorized"),
    (
        "wrong token",
        sized(VALID, token="guess"),
        401,
        "unauthorized",
    ),
    ("no length", post(VALID), 411, "no_length"),
    ("length abc", post(VALID, "Content-Length: abc"), 400, "bad_length"),
    ("negative length", post(VALID, "Content-Length: -5"), 400, "bad_length"),
    ("huge length", post(b"", "Content-Length: 999999999"), 413, "too_large"),
    ("not json", sized(b"{nope"), 400, "invalid_json"),
    ("invalid utf-8", sized(b'{"a":"\xff"}'), 400, "invalid_json"),
    ("deep nesting", sized(b"[" * 100_000), 400, "invalid_json"),
    ("a list", sized(b"[]"), 400, "not_a_notification"),
    ("alerts not a list", sized(b'{"alerts": {}}'), 400, "not_a_notification"),
    (
        "alert not an object",
        sized(b'{"alerts": [1]}'),
        400,
        "not_a_notification",
    ),
]


@pytest.mark.parametrize(
    ("name", "request_bytes", "code", "reason"), HOSTILE, ids=[h[0] for h in HOSTILE]
)
def test_hostile_requests_get_a_4xx_a_count_and_no_dispatch(
    running: Running, caplog: pytest.LogCaptureFixture, name, request_bytes, code, reason
):
    with caplog.at_level(logging.WARNING, logger="churnops.retraining.webhook"):
        answer = raw(running, request_bytes)

    assert status(answer) == code, answer[:300]
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"] == reason
    assert running.rejections()[reason] == 1
    assert any(reason in r.getMessage() for r in caplog.records)
    assert b"Traceback" not in answer and running.github.count() == 0


@pytest.mark.parametrize(
    "change",
    [
        {"fingerprint": "zz\nINFO decision=dispatched"},
        {"fingerprint": 7},
        {"startsAt": "yesterday"},
        {"labels": ["alertname"]},
        {"annotations": "features"},
    ],
)
def test_alerts_with_forged_fields_are_refused(running: Running, change: dict):
    forged = {**drift_alert("firing", FIRST), **change}
    response = running.alert(notification(forged))

    assert response.status_code == 400
    assert response.json()["error"] == "not_a_notification"
    assert running.github.count() == 0


def test_attacker_strings_never_reach_the_dispatch_or_the_log(
    running: Running, caplog: pytest.LogCaptureFixture
):
    features = 'contract\nreason="fake",$(curl evil),monthly_charges'
    with caplog.at_level(logging.INFO, logger="churnops.retraining.trigger"):
        running.alert(notification(drift_alert("firing", FIRST, features=features)))

    [dispatch] = running.github.dispatches
    assert dispatch.body["inputs"]["features"] == "contract,monthly_charges"
    assert all("evil" not in r.getMessage() and "\n" not in r.getMessage() for r in caplog.records)


def test_a_slow_client_is_cut_off_and_others_are_served_meanwhile(running: Running):
    port = int(running.url.rsplit(":", 1)[1])
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as slow:
        slow.sendall(b"POST /alert HTTP/1.1\r\nHost: t\r\n")  # and never more
        assert running.alert(notification(drift_alert("firing", FIRST))).status_code == 200
        assert slow.recv(100) == b""  # closed by the server after its read timeout
    assert time.monotonic() - started < webhook.TIMEOUT_SECONDS + 5


def test_the_trigger_will_not_start_without_a_webhook_token(tmp_path: Path):
    from churnops.retraining import trigger

    with pytest.raises(SystemExit, match="no webhook token"):
        trigger.main(
            [
                "--repository",
                "o/r",
                "--webhook-token-file",
                str(tmp_path / "missing"),
                "--port",
                "0",
            ]
        )


def test_connections_beyond_the_limit_are_refused_at_once_not_queued(running: Running):
    port = int(running.url.rsplit(":", 1)[1])
    held = [socket.create_connection(("127.0.0.1", port)) for _ in range(webhook.MAX_CONNECTIONS)]
    try:
        for connection in held:
            connection.sendall(b"POST /alert HTTP/1.1\r\n")  # each holds a slot
        time.sleep(0.3)
        with pytest.raises(httpx.TransportError):
            running.alert(notification(drift_alert("firing", FIRST)))
    finally:
        for connection in held:
            connection.close()
    time.sleep(0.3)
    assert running.alert(notification(drift_alert("firing", FIRST))).status_code == 200
    assert running.rejections()["busy"] >= 1
