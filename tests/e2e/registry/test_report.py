"""`churnops report`: the pull-request comment from real `dvc params/metrics/plots diff`.

A temporary clone gets a pull-request branch that changes a param and the metrics and
fails the gate. GitHub's API cannot be reached from here: a local stand-in answers the
three issue-comment calls the report makes, so updating in place is tested for real.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from churnops.release.report import MARKER
from tests.e2e.registry.workspace import churnops_process, clone, git

REPOSITORY = "churnops/churnops"
PULL_REQUEST = 7
TOKEN = "test-token"
BOT = "churnops-bot[bot]"  # the login GitHub shows for TOKEN's comments


class CommentsStandIn:
    """GitHub's issue comments API for one pull request, in memory."""

    def __init__(self, unrelated: int) -> None:
        self.comments: list[dict[str, Any]] = [
            {
                "id": n,
                "body": f"comment {n}",
                "user": {"login": "someone"},
                "html_url": f"https://github.invalid/c/{n}",
            }
            for n in range(1, unrelated + 1)
        ]
        # Someone else's comment that starts like the report: never to be edited.
        self.comments[3]["body"] = f"{MARKER} not the bot's"
        self.calls: list[tuple[str, str]] = []
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def _reply(self, status: int, payload: Any) -> None:
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _handle(self) -> None:
                standin.calls.append((self.command, self.path))
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    return self._reply(401, {"message": "Bad credentials"})
                path, _, query = self.path.partition("?")
                length = int(self.headers.get("Content-Length") or 0)
                sent = json.loads(self.rfile.read(length)) if length else None
                listing = f"/repos/{REPOSITORY}/issues/{PULL_REQUEST}/comments"
                if self.command == "GET" and path == listing:
                    params = dict(p.split("=") for p in query.split("&"))
                    size, page = int(params["per_page"]), int(params["page"])
                    return self._reply(200, standin.comments[(page - 1) * size : page * size])
                if self.command == "POST" and path == listing:
                    number = len(standin.comments) + 1
                    url = f"https://github.invalid/c/{number}"
                    standin.comments.append(
                        {
                            "id": number,
                            "body": sent["body"],
                            "user": {"login": BOT},
                            "html_url": url,
                        }
                    )
                    return self._reply(201, standin.comments[-1])
                prefix = f"/repos/{REPOSITORY}/issues/comments/"
                if self.command == "PATCH" and path.startswith(prefix):
                    comment = next(
                        c for c in standin.comments if c["id"] == int(path[len(prefix) :])
                    )
                    comment["body"] = sent["body"]
                    return self._reply(200, comment)
                return self._reply(404, {"message": "Not Found"})

            do_GET = do_POST = do_PATCH = _handle

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def ours(self) -> list[dict[str, Any]]:
        return [
            c for c in self.comments if c["body"].startswith(MARKER) and c["user"]["login"] == BOT
        ]


@pytest.fixture
def github() -> Iterator[CommentsStandIn]:
    standin = CommentsStandIn(unrelated=120)  # more than one page of comments
    thread = threading.Thread(target=standin.server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield standin
    standin.server.shutdown()
    standin.server.server_close()
    thread.join()


@pytest.fixture(scope="module")
def pull_request(tmp_path_factory: pytest.TempPathFactory, repo_root: Path) -> Path:
    """A clone on a branch that lowers C, worsens the metrics and fails the gate."""
    repo = clone(repo_root, tmp_path_factory.mktemp("report") / "churnops")
    git(repo, "checkout", "-q", "-B", "main")
    git(repo, "checkout", "-q", "-b", "lower-c")
    params = repo / "params.yaml"
    text = params.read_text()
    assert "      C: 1.0\n" in text
    params.write_text(text.replace("      C: 1.0\n", "      C: 0.5\n"))
    metrics = json.loads((repo / "reports" / "metrics.json").read_text())
    metrics["test"]["roc_auc"] = 0.8123
    metrics["fit"]["diagnosis"] = "underfitting"
    (repo / "reports" / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    gate = json.loads((repo / "reports" / "gate.json").read_text())
    gate["passed"] = False
    gate["rules"][0].update(passed=False, value=0.8123, reason="FAILED: roc_auc is 0.8123")
    (repo / "reports" / "gate.json").write_text(json.dumps(gate, indent=2) + "\n")
    git(repo, "commit", "-q", "-am", "Lower C")
    return repo


def rows(report: str, key: str) -> list[list[str]]:
    """The table rows of the report that mention `key`, split into cells."""
    return [
        [cell.strip() for cell in line.strip("|").split("|")]
        for line in report.splitlines()
        if line.startswith("|") and f"`{key}`" in line
    ]


def test_report_shows_params_metrics_gate_and_plots(pull_request: Path, tmp_path: Path) -> None:
    out, plots = tmp_path / "report.md", tmp_path / "plots"
    done = churnops_process(
        pull_request,
        "report",
        "--out",
        str(out),
        "--plots-dir",
        str(plots),
        "--plots-url",
        "https://github.invalid/run/1#artifacts",
    )
    assert done.returncode == 0, done.stderr
    report = out.read_text()
    assert report.startswith(MARKER)
    assert "against `main`" in report
    assert rows(report, "train.hyperparams.logistic_regression.C") == [
        ["params.yaml", "`train.hyperparams.logistic_regression.C`", "1.0000", "0.5000", "-0.5000"]
    ]
    (roc_auc,) = rows(report, "test.roc_auc")
    assert roc_auc[:4] == ["reports/metrics.json", "`test.roc_auc`", "0.8418", "0.8123"]
    assert roc_auc[4] == "-0.0295"
    assert rows(report, "fit.diagnosis")[0][2:] == ["`good fit`", "`underfitting`", "changed"]
    assert rows(report, "test.f1") == []  # unchanged metrics stay out of the table
    assert "**Gate: FAILED**" in report
    assert "The candidate on the test split (1409 customers)" in report  # params only: as before
    assert rows(report, "roc_auc")[0] == ["`roc_auc`", "0.8418", "0.8418", "+0.0000"]
    gate_rows = [line for line in report.splitlines() if "FAILED**" in line and "|" in line]
    assert report.index(gate_rows[0]) < report.index("| `pr_auc >= 0.6`")  # failures first
    assert "(https://github.invalid/run/1#artifacts)" in report
    page = (plots / "index.html").read_text()
    for title in ("ROC", "Precision-recall", "Confusion matrix", "Calibration", "Learning curve"):
        assert title in page
    assert '"rev": "main"' in page and '"rev": "workspace"' in page  # base and this PR


def test_report_names_a_base_it_cannot_find(pull_request: Path) -> None:
    done = churnops_process(pull_request, "report", "--base", "no-such-branch")
    assert done.returncode != 0
    assert "the base 'no-such-branch' is not a commit in this clone" in done.stderr


def test_report_comment_is_created_once_then_updated_in_place(
    pull_request: Path, github: CommentsStandIn
) -> None:
    env = {
        "GITHUB_API_URL": github.url,
        "GITHUB_REPOSITORY": REPOSITORY,
        "GITHUB_TOKEN": TOKEN,
        "CHURNOPS_BOT": BOT,
    }
    first = churnops_process(pull_request, "report", "--post", str(PULL_REQUEST), **env)
    assert first.returncode == 0, first.stderr
    assert len(github.ours()) == 1
    assert ("POST", f"/repos/{REPOSITORY}/issues/{PULL_REQUEST}/comments") in github.calls

    metrics_file = pull_request / "reports" / "metrics.json"
    metrics = json.loads(metrics_file.read_text())
    metrics["test"]["roc_auc"] = 0.8222
    metrics_file.write_text(json.dumps(metrics, indent=2) + "\n")
    second = churnops_process(pull_request, "report", "--post", str(PULL_REQUEST), **env)
    assert second.returncode == 0, second.stderr
    (comment,) = github.ours()
    assert rows(comment["body"], "test.roc_auc")[0][3] == "0.8222"
    assert ("PATCH", f"/repos/{REPOSITORY}/issues/comments/{comment['id']}") in github.calls
    assert sum(call[0] == "POST" for call in github.calls) == 1
    assert len(github.comments) == 121
    assert github.comments[3]["body"] == f"{MARKER} not the bot's"

    refused = churnops_process(
        pull_request, "report", "--post", str(PULL_REQUEST), **{**env, "GITHUB_TOKEN": "stale"}
    )
    assert refused.returncode != 0
    assert "posting to pull request 7 failed: HTTP Error 401" in refused.stderr
    assert len(github.comments) == 121
