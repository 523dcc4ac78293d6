"""The UI end to end: the real API (`bentoml serve`), the real app (`streamlit run`) and
headless Chromium (Debian's, driven by Playwright's Python package).

A person scores a customer and a file, reads the model card and the live monitoring, and
sees a plain message when the API is down. Screenshots land in the test artifacts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pandas as pd
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from churnops import schema
from churnops.snapshots import snapshot_paths
from churnops.ui.client import ApiClient, score_frame
from tests.support.bento_server import Server, start_server, stop_server
from tests.support.net import free_port, wait_until
from tests.support.processes import stop_group

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
BIN = Path(sys.executable).parent


@dataclass
class App:
    process: subprocess.Popen
    url: str


def start_app(repo_root: Path, api_url: str, log: Path) -> App:
    """`streamlit run` of the app on a free loopback port, talking to `api_url`."""
    port = free_port()
    command = [
        BIN / "streamlit",
        "run",
        repo_root / "src" / "churnops" / "ui" / "app.py",
        "--server.address=127.0.0.1",
        f"--server.port={port}",
        "--server.headless=true",
        "--browser.gatherUsageStats=false",
        "--client.toolbarMode=minimal",
    ]
    with log.open("w") as out:
        process = subprocess.Popen(
            command,
            cwd=repo_root,
            env={**os.environ, "CHURNOPS_API_URL": api_url},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"streamlit exited:\n{log.read_text()[-3000:]}")
        try:
            return httpx.get(f"{url}/_stcore/health", timeout=2).text == "ok"
        except httpx.TransportError:
            return False

    wait_until(healthy, 60, "streamlit app healthy")
    return App(process, url)


def stop_app(app: App) -> None:
    stop_group(app.process, timeout=15)


@pytest.fixture(scope="module")
def api(repo_root: Path, artifacts_dir: Path) -> Iterator[Server]:
    server = start_server(
        "churnops.serving.service:Churnops",
        artifacts_dir / "ui-bentoml-serve.log",
        cwd=repo_root,
        env={"CHURNOPS_MODEL_DIR": str(repo_root / "models")},
    )
    yield server
    stop_server(server)


@pytest.fixture(scope="module")
def app(repo_root: Path, artifacts_dir: Path, api: Server) -> Iterator[App]:
    app = start_app(repo_root, api.url, artifacts_dir / "ui-streamlit.log")
    yield app
    stop_app(app)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    expect.set_options(timeout=30_000)  # the first page view imports the app's libraries
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    page = browser.new_page(viewport={"width": 1400, "height": 1500})
    yield page
    page.close()


@pytest.fixture(scope="module")
def customers_csv(repo_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """30 customers of the data snapshot, 3 of them made invalid in different ways."""
    frame = pd.read_csv(snapshot_paths(repo_root / "data")[0], nrows=30).drop(
        columns=[schema.TARGET]
    )
    frame.loc[3, "tenure"] = -4
    frame.loc[7, "contract"] = "Weekly"
    frame.loc[11, "senior_citizen"] = 2
    path = tmp_path_factory.mktemp("ui") / "customers.csv"
    frame.to_csv(path, index=False)
    return path


def open_app(page: Page, url: str) -> None:
    page.goto(url)
    expect(page.get_by_role("button", name="Score customer")).to_be_visible()
    expect(page.get_by_text("Payment method")).to_be_visible()


def test_a_person_scores_a_customer_and_sees_the_decision(
    page: Page, app: App, api: Server, artifacts_dir: Path
):
    open_app(page, app.url)
    expect(page.get_by_text("API ready")).to_be_visible()
    page.get_by_test_id("stForm").get_by_text("Senior citizen").click()
    page.get_by_role("button", name="Score customer").click()

    panel = page.get_by_role("tabpanel", name="Score a customer")
    shown = panel.get_by_test_id("stMetric").filter(has_text="Churn probability")
    expect(shown).to_be_visible()
    panel.get_by_text("The request, to call the API yourself").click()
    request = panel.get_by_test_id("stCode").inner_text()
    customer = json.loads(request[request.index("{") : request.rindex("}") + 1])["customers"][0]
    assert customer["senior_citizen"] == 1
    expected = api.predict([customer]).json()["predictions"][0]
    expect(shown).to_contain_text(f"{expected['churn_probability']:.1%}")
    decision = "Likely to churn" if expected["churn"] else "Likely to stay"
    expect(panel.get_by_text(decision)).to_be_visible()
    page.screenshot(path=artifacts_dir / "ui-score-customer.png")


def test_a_person_scores_a_file_and_sees_the_rejected_rows(
    page: Page, app: App, customers_csv: Path, artifacts_dir: Path
):
    open_app(page, app.url)
    page.get_by_role("tab", name="Score a file").click()
    panel = page.get_by_role("tabpanel", name="Score a file")
    panel.locator("input[type=file]").set_input_files(customers_csv)

    metrics = panel.get_by_test_id("stMetric")
    expect(metrics.filter(has_text="Customers scored")).to_contain_text("27")
    expect(metrics.filter(has_text="Rejected rows")).to_contain_text("3")
    with page.expect_download() as download:
        panel.get_by_role("button", name="Download the scored CSV").click()
    scored = pd.read_csv(download.value.path())
    assert len(scored) == 27 and scored["churn_probability"].between(0, 1).all()
    assert not scored[schema.ID_COLUMN].isin([4, 8, 12]).any()  # rows 3, 7, 11
    page.screenshot(path=artifacts_dir / "ui-score-file.png")


def test_model_card_and_live_monitoring_show_the_serving_model(
    page: Page, app: App, api: Server, artifacts_dir: Path
):
    metadata = api.client.get("/metadata").json()
    open_app(page, app.url)
    page.get_by_role("tab", name="Model card").click()
    card = page.get_by_role("tabpanel", name="Model card")
    expect(card.get_by_text(metadata["model_sha256"][:12], exact=True)).to_be_visible()
    roc_auc = f"{metadata['metrics']['roc_auc']:.3f}"
    expect(card.get_by_test_id("stMetric").filter(has_text="ROC AUC")).to_contain_text(roc_auc)
    page.screenshot(path=artifacts_dir / "ui-model-card.png")

    page.get_by_role("tab", name="Live monitoring").click()
    panel = page.get_by_role("tabpanel", name="Live monitoring")
    scored = api.metric("churnops_predictions_total")
    expect(panel.get_by_test_id("stMetric").filter(has_text="Customers scored")).to_contain_text(
        f"{scored:,.0f}"
    )
    page.screenshot(path=artifacts_dir / "ui-monitoring.png")


def test_with_the_api_down_the_page_says_so_and_stays_usable(
    page: Page, repo_root: Path, artifacts_dir: Path
):
    down = start_app(repo_root, f"http://127.0.0.1:{free_port()}", artifacts_dir / "ui-down.log")
    try:
        open_app(page, down.url)
        expect(page.get_by_text("API unavailable")).to_be_visible()
        page.get_by_role("button", name="Score customer").click()
        panel = page.get_by_role("tabpanel", name="Score a customer")
        expect(panel.get_by_text("cannot be reached")).to_be_visible()
        page.screenshot(path=artifacts_dir / "ui-api-down.png")
        page.get_by_role("tab", name="Model card").click()
        expect(page.get_by_text("The model card comes from the API's /metadata.")).to_be_visible()
        expect(page.get_by_text("Traceback")).to_have_count(0)
    finally:
        stop_app(down)


def test_batch_scoring_sets_aside_what_the_api_rejects_across_batches(
    api: Server, customers_csv: Path
):
    frame = pd.read_csv(customers_csv)
    frame.loc[20:29, "monthly_charges"] = -1.0  # 13 invalid rows in all, over several batches
    client = ApiClient(api.url)

    scored, rejects = score_frame(client.predict, frame, max_batch=7)

    assert rejects["row"].tolist() == [3, 7, 11, *range(20, 30)]
    assert rejects["reason"].iloc[-1].startswith("monthly_charges:")
    assert len(scored) + len(rejects) == len(frame)
    valid = frame.drop(index=rejects["row"])
    direct = client.predict(json.loads(valid[list(schema.FEATURE_NAMES)].to_json(orient="records")))
    assert scored["churn_probability"].tolist() == [p["churn_probability"] for p in direct]
