"""The HTTP contract of a real `bentoml serve` of the working tree: answers, bad input, docs.

One server for the module. Bad requests are a table: each must get its 4xx, a JSON
message naming the field, no traceback or path, and be counted by reason; afterwards
the service is still ready and has counted no internal error. schemathesis then fuzzes
the service's own OpenAPI document (/docs.json) and must see no 5xx.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from churnops import schema
from churnops.config import CARD_FILE, MODEL_FILE, read_json
from churnops.predictor import Predictor
from churnops.serving.metrics import FLUSH_SECONDS
from tests.support.bento_server import BIN, Server
from tests.support.net import wait_until

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(source_server: Server) -> Server:
    return source_server


@pytest.fixture(scope="module")
def customer(test_customers: list[dict]) -> dict:
    return test_customers[0]


def test_predict_answers_each_customer_in_order_as_the_onnx_model_does(
    server: Server, test_customers: list[dict], repo_root: Path
) -> None:
    batch = test_customers[:100]
    response = server.predict(batch)
    assert response.status_code == 200, response.text
    body = response.json()
    card = read_json(repo_root / "models" / CARD_FILE)
    assert body["model_sha256"] == card["model_sha256"]
    served = np.array([p["churn_probability"] for p in body["predictions"]])
    columns = {name: [c[name] for c in batch] for name in schema.FEATURE_NAMES}
    expected = Predictor(repo_root / "models" / MODEL_FILE).churn_probability(columns)
    np.testing.assert_allclose(served, expected, rtol=0, atol=1e-6)
    threshold = card["decision_threshold"]
    assert [p["churn"] for p in body["predictions"]] == [bool(p >= threshold) for p in served]
    assert len(set(np.round(served, 3))) > 10  # really per customer, not one answer repeated


def test_predict_takes_the_maximum_batch(server: Server, test_customers: list[dict]) -> None:
    batch = (test_customers * 2)[:1000]
    response = server.predict(batch)
    assert response.status_code == 200
    assert len(response.json()["predictions"]) == 1000


def test_metadata_says_which_model_serves(server: Server, repo_root: Path) -> None:
    metadata = server.client.get("/metadata").json()
    card = read_json(repo_root / "models" / CARD_FILE)
    for key in ("model_sha256", "estimator", "data_hash", "trained_at", "metrics"):
        assert metadata[key] == card[key]
    assert metadata["git_commit"] == "0" * 40  # CHURNOPS_GIT_COMMIT, set by the fixture
    assert metadata["serve"]["max_batch"] == 1000


def test_health_and_metrics_endpoints(server: Server) -> None:
    assert server.client.get("/livez").status_code == 200
    assert server.client.get("/readyz").status_code == 200
    metrics = server.client.get("/metrics").text
    assert "bentoml_service_request_total" in metrics  # BentoML's own are kept
    assert server.metric("churnops_model_info", git_commit="0" * 40) == 1


def _without(customer: dict, name: str) -> dict:
    return {k: v for k, v in customer.items() if k != name}


def _with(customer: dict, **changes: object) -> dict:
    return {**customer, **changes}


# (case, body as bytes or a function of a valid customer, content type, status, reason, words
# the message must contain)
BAD_REQUESTS = [
    ("invalid JSON", b'{"customers": [', "application/json", 400, "invalid_json", ["JSON"]),
    ("empty body", b"", "application/json", 400, "empty_body", ["empty"]),
    (
        "wrong content type",
        b"customers=1",
        "text/plain",
        415,
        "unsupported_media_type",
        ["application/json"],
    ),
    ("body not an object", b"[]", "application/json", 422, "validation", ["body"]),
    ("no customers key", b"{}", "application/json", 422, "validation", ["customers"]),
    (
        "empty list",
        {"customers": []},
        "application/json",
        422,
        "validation",
        ["customers", "at least 1"],
    ),
    (
        "customers not a list",
        {"customers": {}},
        "application/json",
        422,
        "validation",
        ["customers"],
    ),
    (
        "missing field",
        lambda c: {"customers": [_without(c, "tenure")]},
        "application/json",
        422,
        "validation",
        ["customers[0].tenure", "required"],
    ),
    (
        "extra field",
        lambda c: {"customers": [_with(c, shoe_size=42)]},
        "application/json",
        422,
        "validation",
        ["customers[0].shoe_size", "not permitted"],
    ),
    (
        "extra top-level field",
        lambda c: {"customers": [c], "debug": True},
        "application/json",
        422,
        "validation",
        ["debug"],
    ),
    (
        "string for a number",
        lambda c: {"customers": [_with(c, tenure="12")]},
        "application/json",
        422,
        "validation",
        ["customers[0].tenure", "number"],
    ),
    (
        "bool for a flag",
        lambda c: {"customers": [_with(c, female=True)]},
        "application/json",
        422,
        "validation",
        ["customers[0].female", "integer"],
    ),
    (
        "flag out of range",
        lambda c: {"customers": [_with(c, senior_citizen=2)]},
        "application/json",
        422,
        "validation",
        ["customers[0].senior_citizen", "1"],
    ),
    (
        "negative tenure",
        lambda c: {"customers": [_with(c, tenure=-1)]},
        "application/json",
        422,
        "validation",
        ["customers[0].tenure", "greater than or equal to 0"],
    ),
    (
        "charges out of range",
        lambda c: {"customers": [_with(c, monthly_charges=1e9)]},
        "application/json",
        422,
        "validation",
        ["customers[0].monthly_charges", "less than"],
    ),
    (
        "NaN",
        lambda c: (
            b'{"customers": ['
            + json.dumps(_with(c, tenure=0)).replace('"tenure": 0', '"tenure": NaN').encode()
            + b"]}"
        ),
        "application/json",
        422,
        "validation",
        ["customers[0].tenure", "finite"],
    ),
    (
        "Infinity",
        lambda c: (
            b'{"customers": ['
            + json.dumps(_with(c, tenure=0)).replace('"tenure": 0', '"tenure": Infinity').encode()
            + b"]}"
        ),
        "application/json",
        422,
        "validation",
        ["customers[0].tenure", "finite"],
    ),
    (
        "null where not allowed",
        lambda c: {"customers": [_with(c, contract=None)]},
        "application/json",
        422,
        "validation",
        ["customers[0].contract", "Month-to-month"],
    ),
    (
        "unknown category",
        lambda c: {"customers": [_with(c, contract="Weekly")]},
        "application/json",
        422,
        "validation",
        ["customers[0].contract", "'Month-to-month', 'One year' or 'Two year'"],
    ),
    (
        "second customer bad",
        lambda c: {"customers": [c, _with(c, payment_method="Cash")]},
        "application/json",
        422,
        "validation",
        ["customers[1].payment_method"],
    ),
    (
        "batch over the limit",
        lambda c: {"customers": [c] * 1001},
        "application/json",
        413,
        "too_large",
        ["at most 1000"],
    ),
    (
        "body over the limit",
        lambda c: b'{"customers": []' + b" " * 2_100_000 + b"}",
        "application/json",
        413,
        "too_large",
        ["bytes"],
    ),
]


@pytest.mark.parametrize(
    ("body", "content_type", "status", "reason", "words"),
    [pytest.param(*case[1:], id=case[0]) for case in BAD_REQUESTS],
)
def test_bad_request_gets_a_4xx_naming_the_problem(
    server: Server, customer: dict, body, content_type: str, status: int, reason: str, words
) -> None:
    if callable(body):
        body = body(customer)
    if isinstance(body, dict):
        body = json.dumps(body).encode()
    before = server.metric("churnops_rejected_requests_total", reason=reason)
    response = server.client.post("/predict", content=body, headers={"content-type": content_type})
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    answer = response.json()
    assert answer["error"] == reason
    for word in words:
        assert word in answer["message"], answer
    assert "Traceback" not in response.text and "/churnops/" not in response.text
    assert server.metric("churnops_rejected_requests_total", reason=reason) == before + 1


def test_service_is_healthy_after_bad_input(server: Server, customer: dict) -> None:
    assert server.client.get("/readyz").status_code == 200
    assert server.predict([customer]).status_code == 200
    assert server.metric("churnops_internal_errors_total") == 0


def _total(server: Server, series: str, containing: str = "") -> float:
    """The sum of the samples on /metrics whose line starts with `series` and has `containing`."""
    text = server.client.get("/metrics").text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(series) and containing in line
    )


def _bentoml_requests(server: Server, endpoint: str) -> float:
    return _total(server, "bentoml_service_request_total{", f'endpoint="{endpoint}"')


def _predict_requests(server: Server) -> float:
    """POST /predict answered, every status: churnops' count (BentoML's skips /predict)."""
    return _total(server, "churnops_request_duration_seconds_count{")


def test_predict_is_answered_ahead_of_bentomls_middlewares(server: Server, customer: dict) -> None:
    time.sleep(4 * FLUSH_SECONDS)  # earlier tests' answers are written by now
    predicts, metadata = _predict_requests(server), _bentoml_requests(server, "/metadata")
    for _ in range(3):
        assert server.predict([customer]).status_code == 200
    assert server.predict([{}]).status_code == 422
    assert server.client.get("/metadata").status_code == 200
    wait_until(  # churnops counts every answer (at its next 50 ms flush)
        lambda: _predict_requests(server) == predicts + 4, 10, "4 more /predict answers counted"
    )
    assert _bentoml_requests(server, "/predict") == 0  # BentoML's middlewares never saw one
    assert _bentoml_requests(server, "/metadata") == metadata + 1  # the other routes: they do


def test_schemathesis_finds_no_server_error(
    server: Server, artifacts_dir: Path, tmp_path: Path
) -> None:
    report = artifacts_dir / "schemathesis-serving.txt"
    before = _predict_requests(server)
    run = subprocess.run(
        [
            BIN / "schemathesis",
            "run",
            f"{server.url}/docs.json",
            "--checks",
            "not_a_server_error,status_code_conformance,response_schema_conformance",
            "--max-examples",
            "60",
            "--seed",
            "3",
            "--request-timeout",
            "20",
        ],
        cwd=tmp_path,  # schemathesis keeps its example database in the working directory
        capture_output=True,
        text=True,
        timeout=240,
    )
    report.write_text(run.stdout + run.stderr)
    assert run.returncode == 0, run.stdout[-4000:]
    assert "Tested: 6" in run.stdout  # /predict, /metadata and BentoML's four
    wait_until(lambda: _predict_requests(server) - before >= 50, 10, "50 /predict answers counted")
    assert server.metric("churnops_internal_errors_total") == 0


def _series(server: Server) -> set[str]:
    text = server.client.get("/metrics").text
    return {line.rsplit(" ", 1)[0] for line in text.splitlines() if not line.startswith("#")}


def test_a_thousand_unknown_paths_add_no_metric_series(server: Server) -> None:
    for first in ("/no-such-path", "/static_content/no-such-file.js"):  # each label's series
        assert server.client.get(first).status_code == 404
    before = _series(server)
    for i in range(1000):
        path = f"/scan-{i}" if i % 3 else f"/static_content/x{i}.js"
        assert server.client.get(path).status_code == 404
    after = _series(server)
    new = {line for line in after - before if "endpoint=" in line}
    assert not new, sorted(new)[:5]
    assert any('endpoint="/unknown"' in line for line in after)
    assert server.client.get("/docs.json").status_code == 200  # known routes still answer
