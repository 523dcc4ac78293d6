"""Two workers: the drift window, the fairness counts, the totals, the prediction drift and
the estimated performance describe all traffic.

Requests over several connections reach both workers (the kernel hands each connection to
one of them; the test opens connections until both have answered);
the churnops_* metrics on /metrics must then equal what one process would have seen.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.mmap_dict import MmapedDict

from churnops import cbpe, drift
from tests.support.bento_server import Server, start_server, stop_server
from tests.support.net import wait_until

CONNECTIONS = 8
MAX_CONNECTIONS = 100
CUSTOMERS = 300  # fewer than serve.drift_window: the window is all of them


@pytest.fixture(scope="module")
def two_workers(repo_root: Path, artifacts_dir: Path, tmp_path_factory) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("bentoml-home")
    server = start_server(
        "churnops.serving.service:Churnops",
        artifacts_dir / "bentoml-serve-two-workers.log",
        cwd=repo_root,
        env={
            "CHURNOPS_MODEL_DIR": str(repo_root / "models"),
            "CHURNOPS_GIT_COMMIT": "0" * 40,
            "BENTOML_HOME": str(home),
            "BENTOML_CONFIG_OPTIONS": "services.churnops.workers=2",
        },
    )
    server.home = home
    yield server
    stop_server(server)


def predictions_by_process(home: Path) -> dict[str, float]:
    """churnops_predictions_total in each process's multiprocess file (by pid)."""
    found = {}
    for path in (home / "prometheus_multiproc_dir").glob("counter_*.db"):
        for key, value, *_ in MmapedDict.read_all_values_from_file(str(path)):
            if json.loads(key)[1] == "churnops_predictions_total" and value:
                found[path.stem.removeprefix("counter_")] = value
    return found


@pytest.fixture(scope="module")
def sent(two_workers: Server, test_customers: list[dict]) -> list[tuple[dict, float]]:
    """CUSTOMERS customers, one a request over CONNECTIONS connections or more, with their
    answers. Which worker accepts a connection is the kernel's choice: until both have
    answered, each request opens another connection (at most MAX_CONNECTIONS)."""
    answered = []
    clients: list[httpx.Client] = []
    try:
        for i, customer in enumerate(test_customers[:CUSTOMERS]):
            if len(clients) < CONNECTIONS or (
                len(clients) < MAX_CONNECTIONS and len(predictions_by_process(two_workers.home)) < 2
            ):
                clients.append(httpx.Client(base_url=two_workers.url, timeout=30))
                client = clients[-1]
            else:
                client = clients[i % len(clients)]
            response = client.post("/predict", json={"customers": [customer]})
            assert response.status_code == 200, response.text
            answered.append((customer, response.json()["predictions"][0]["churn_probability"]))
    finally:
        for client in clients:
            client.close()
    return answered


def test_two_workers_report_all_traffic(
    two_workers: Server, sent: list[tuple[dict, float]], repo_root: Path
) -> None:
    customers = [customer for customer, _ in sent]
    wait_until(
        lambda: sum(predictions_by_process(two_workers.home).values()) == CUSTOMERS,
        15,
        "every worker's predictions written (each flushes every 50 ms)",
    )
    by_process = predictions_by_process(two_workers.home)
    assert len(by_process) == 2, by_process  # both workers answered
    assert sum(by_process.values()) == CUSTOMERS
    assert two_workers.metric("churnops_predictions_total") == CUSTOMERS

    # Each worker counts its customers within a refresh, whether or not it gets more requests.
    wait_until(
        lambda: two_workers.metric("churnops_drift_window_customers") == CUSTOMERS,
        15,
        "the drift window holding every worker's customers",
    )
    profile = json.loads((repo_root / "models" / "reference_profile.json").read_text())
    columns = {name: [c[name] for c in customers] for name in profile["features"]}
    expected = drift.feature_psi(profile, columns)
    for feature, value in expected.items():
        assert two_workers.metric("churnops_feature_drift_psi", feature=feature) == pytest.approx(
            value, rel=1e-9, abs=1e-12
        ), feature
    women = sum(c["female"] for c in customers)
    assert (
        two_workers.metric("churnops_group_predictions_total", feature="female", group="1") == women
    )


def test_estimate_and_prediction_drift_are_of_every_workers_customers(
    two_workers: Server, sent: list[tuple[dict, float]], repo_root: Path
) -> None:
    wait_until(
        lambda: two_workers.metric("churnops_drift_window_customers") == CUSTOMERS,
        15,
        "the drift window holding every worker's customers",
    )
    profile = json.loads((repo_root / "models" / "reference_profile.json").read_text())
    reference = profile[cbpe.PREDICTION]
    counts = cbpe.bin_counts(reference, [probability for _, probability in sent])
    for metric, value in cbpe.estimate(reference, counts).items():
        assert two_workers.metric("churnops_estimated_performance", metric=metric) == pytest.approx(
            value, rel=1e-9, abs=1e-12
        ), metric
    assert two_workers.metric("churnops_prediction_drift_psi") == pytest.approx(
        cbpe.prediction_psi(reference, counts), rel=1e-9, abs=1e-12
    )
