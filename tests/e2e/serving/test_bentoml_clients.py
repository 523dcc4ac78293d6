"""BentoML's own clients against a real `bentoml serve`: /predict is a declared API.

`bentoml.SyncHTTPClient` and `bentoml.AsyncHTTPClient` learn the endpoints from
/schema.json and call `predict(customers=[...])`; they get exactly what a plain HTTP POST
gets (the fast path answers both), and a bad request raises with the 400's message.
"""

from __future__ import annotations

import asyncio

import bentoml
import pytest
from bentoml.exceptions import BentoMLException

from tests.support.bento_server import Server

pytestmark = pytest.mark.slow


def test_the_sync_client_predicts_as_plain_http_does(
    source_server: Server, test_customers: list[dict]
) -> None:
    customers = test_customers[:3]
    plain = source_server.client.post("/predict", json={"customers": customers}).json()
    with bentoml.SyncHTTPClient(source_server.url, timeout=30) as client:
        assert "predict" in client.endpoints
        answer = client.predict(customers=customers)
    assert answer == plain
    assert len(answer["predictions"]) == 3
    assert {"churn_probability", "churn"} == set(answer["predictions"][0])


def test_the_sync_client_raises_with_the_reason_of_a_bad_request(
    source_server: Server, test_customers: list[dict]
) -> None:
    bad = {**test_customers[0], "tenure": "long"}
    with (
        bentoml.SyncHTTPClient(source_server.url, timeout=30) as client,
        pytest.raises(BentoMLException) as raised,
    ):
        client.predict(customers=[bad])
    assert "customers[0].tenure" in str(raised.value)


def test_the_async_client_predicts_too(source_server: Server, test_customers: list[dict]) -> None:
    async def call() -> dict:
        async with bentoml.AsyncHTTPClient(source_server.url, timeout=30) as client:
            return await client.predict(customers=test_customers[:2])

    answer = asyncio.run(call())
    assert len(answer["predictions"]) == 2
    assert answer["model_sha256"] == source_server.client.get("/metadata").json()["model_sha256"]
