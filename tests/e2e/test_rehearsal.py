"""The team's day one, rehearsed: a params-only pull request through CI training, commit-back,
merge, staging, production and a rollback (`make rehearse`).

Real parts: Git over HTTP with tokens (`git http-backend`) and a pre-receive hook that is
main's ruleset, real DVC against a real remote (a folder here; tests/e2e/test_data_remote_s3.py
runs DVC against S3), a real `mlflow server`, and the workflows' own make targets, each job in a
fresh clone like a runner's. GitHub's API is tests/support/github_platform.py; which
workflows a push starts is read from .github/workflows/ (tests/support/workflow_triggers.py).
What GitHub does itself (starting the jobs, check runs of job `gate`, Argo CD's sync) the
rehearsal does in its place, step by step, as the workflows' comments say. Every job (and
every contributor) runs as a non-root user, `runner` when the tests run as root
(scripts/runner-user), as on GitHub's hosted runners.
"""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from churnops.release.report import MARKER
from tests.support.github_platform import RULESET_REFUSAL, GitHubPlatform, app_jwt
from tests.support.mlflow_server import mlflow_server
from tests.support.workflow_triggers import GITHUB_TOKEN_ACTOR, changed_paths, started_by_push

pytestmark = pytest.mark.slow

REPOSITORY = "churnops/churnops"
VENV = Path(sys.executable).parent.parent
BRANCH = "tune-c"
MODEL, CANDIDATES = "churnops", "churnops-candidates"
RUNNER = "runner" if os.geteuid() == 0 else None  # GitHub's runners: not root


def as_runner(
    args: list[str], cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """A command as the runner's user, with its own home (no root config, no root caches)."""
    user = {"user": RUNNER, "group": RUNNER, "extra_groups": []} if RUNNER else {}
    home = pwd.getpwnam(RUNNER).pw_dir if RUNNER else os.environ["HOME"]
    return subprocess.run(
        args,
        cwd=cwd,
        env={**os.environ, "HOME": home, **(env or {})},
        capture_output=True,
        text=True,
        check=False,
        **user,
    )


@dataclass
class World:
    root: Path
    platform: GitHubPlatform
    tracking_uri: str
    dvc_remote: Path
    workflows: Path
    seen_pushes: int = 0
    runs: list[tuple[str, str, str]] = field(default_factory=list)  # (workflow, event, sha)
    state: dict[str, str] = field(default_factory=dict)

    def app_token(self) -> str:
        """What actions/create-github-app-token does: sign a JWT, exchange it for a token."""
        jwt = app_jwt(self.platform.app_private_key(), self.platform.app_id)
        url = f"{self.platform.api}/app/installations/{self.platform.installation_id}/access_tokens"
        call = urllib.request.Request(
            url, method="POST", headers={"Authorization": f"Bearer {jwt}"}
        )
        with urllib.request.urlopen(call, timeout=10) as response:
            assert response.status == 201
            return json.load(response)["token"]

    def checkout(self, name: str, ref: str, token: str) -> Path:
        """A runner's checkout: a fresh clone at `ref`, the venv, this rehearsal's DVC remote."""
        path = self.root / "jobs" / name
        git(self.root, "clone", "-q", self.platform.remote(token), str(path))
        git(path, "checkout", "-q", ref)
        ok(as_runner(["ln", "-s", str(VENV), ".venv"], path))
        # A remote of its own as the default, whatever churnops.yaml names (an S3 endpoint
        # in .dvc/config would not fit a folder's url).
        remote = ("remote", "add", "--local", "--force", "--default", "rehearsal")
        ok(self.dvc(path, *remote, str(self.dvc_remote)))
        return path

    def dvc(self, clone: Path, *args: str) -> subprocess.CompletedProcess[str]:
        return as_runner([str(VENV / "bin" / "dvc"), *args], clone)

    def make(self, clone: Path, *targets: str, **env: str) -> subprocess.CompletedProcess[str]:
        """A workflow step: the same make target, the venv already installed."""
        return as_runner(
            ["make", "--no-print-directory", "-o", ".venv/.installed", *targets],
            clone,
            {
                "PATH": f"{VENV / 'bin'}:{os.environ['PATH']}",
                "PYTHONPATH": str(clone / "src"),
                "MLFLOW_TRACKING_URI": self.tracking_uri,
                "GITHUB_API_URL": self.platform.api,
                "GITHUB_REPOSITORY": REPOSITORY,
                **env,
            },
        )

    def new_runs(self) -> list[tuple[str, str, str]]:
        """The runs the pushes since the last call start, by the workflows' `on:` filters."""
        pushes = self.platform.pushes()[self.seen_pushes :]
        self.seen_pushes += len(pushes)
        started = []
        for push in pushes:
            branch = push.ref.removeprefix("refs/heads/")
            old = push.old if set(push.old) != {"0"} else self.platform.head("main")
            changed = changed_paths(self.platform.bare, old, push.new)
            bases = [
                p["base"]["ref"]
                for p in self.platform.pulls.values()
                if p["state"] == "open" and p["head"]["ref"] == branch
            ]
            message = self.platform.git("log", "-1", "--format=%B", push.new)
            base = bases[0] if bases else None
            for workflow, event in started_by_push(
                self.workflows, push.pusher, branch, changed, base, message
            ):
                started.append((workflow, event, push.new))
        self.runs += started
        return started

    def gate_check(self, sha: str, passed: bool) -> None:
        """GitHub's check run of the job `gate`, as the commit status the ruleset requires."""
        self.platform.statuses.append(
            {"sha": sha, "context": "gate", "state": "success" if passed else "failure"}
        )


def git(cwd: Path, *args: str, **env: str) -> str:
    done = as_runner(["git", *args], cwd, env)
    assert done.returncode == 0, f"git {' '.join(args)}: {done.stderr}"
    return done.stdout.strip()


def commit(cwd: Path, message: str, who: str) -> None:
    """Commit every change as `who` (a person, or the bot's name)."""
    email = f"{who}@users.noreply.github.com"
    names = {"GIT_AUTHOR_NAME": who, "GIT_COMMITTER_NAME": who}
    git(cwd, "commit", "-qam", message, **names, GIT_AUTHOR_EMAIL=email, GIT_COMMITTER_EMAIL=email)


def push(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return as_runner(["git", "push", *args], cwd)


def stand_in_digest(clone: Path) -> str:
    """The image digest CD's build would push (tests/e2e/test_container.py builds the real one)."""
    model = (clone / "models" / "model.onnx").read_bytes()
    return "sha256:" + hashlib.sha256(b"image of " + model).hexdigest()


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, repo_root: Path) -> Iterator[World]:
    github = tmp_path_factory.mktemp("github")  # GitHub's side: the tests' own user
    bare = github / f"{REPOSITORY.split('/')[1]}.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(repo_root), str(bare)], check=True)
    root = Path(tempfile.mkdtemp(prefix="churnops-rehearsal-"))  # the runners' side
    (root / "dvc-remote").mkdir()
    if RUNNER:
        for path in (root, root / "dvc-remote"):
            shutil.chown(path, RUNNER, RUNNER)
    try:
        with (
            mlflow_server(tmp_path_factory.mktemp("mlflow")) as uri,
            GitHubPlatform(bare, REPOSITORY) as platform,
        ):
            workflows = repo_root / ".github" / "workflows"
            yield World(root, platform, uri, root / "dvc-remote", workflows)
    finally:
        shutil.rmtree(root)


def deploy(world: World, sha: str, name: str) -> str:
    """CD's build job, then staging, then production, for `sha`; the digest."""
    build = world.checkout(f"{name}-build", sha, world.app_token())
    ok(world.dvc(build, "pull", "--quiet"))
    digest = stand_in_digest(build)
    ok(world.make(build, "register", DIGEST=digest))
    for overlay in ("staging", "production"):
        job = world.checkout(f"{name}-{overlay}", sha, world.app_token())
        verified = {"VERIFIED": sha} if overlay == "production" else {}
        ok(world.make(job, "release", OVERLAY=overlay, DIGEST=digest, **verified))
    ok(world.make(world.checkout(f"{name}-promote", sha, world.app_token()), "promote"))
    return digest


def test_main_is_protected_from_everyone_but_the_bot(world: World) -> None:
    alice = world.platform.user_token("alice")
    clone = world.checkout("alice-main", "main", alice)
    (clone / "README.md").write_text("a direct edit\n")
    commit(clone, "a direct push", "alice")
    refused = push(clone, "-q", "origin", "HEAD:main")
    assert (
        refused.returncode != 0 and "Changes must be made through a pull request" in refused.stderr
    )
    # GITHUB_TOKEN cannot be a bypass actor either.
    actions = world.platform.user_token(GITHUB_TOKEN_ACTOR)
    git(clone, "remote", "set-url", "origin", world.platform.remote(actions))
    assert push(clone, "-q", "origin", "HEAD:main").returncode != 0
    # A read-only token (a fork's pull request) cannot push at all.
    reader = world.platform.user_token("fork-ci", write=False)
    git(clone, "remote", "set-url", "origin", world.platform.remote(reader))
    denied = push(clone, "-q", "origin", "HEAD:refs/heads/anything")
    assert denied.returncode != 0 and "403" in denied.stderr
    assert world.platform.pushes() == []
    assert RULESET_REFUSAL.splitlines()[0] in refused.stderr


def test_the_champion_today_is_main_as_cd_released_it(world: World) -> None:
    """Before the pull request: CD has released main, so the registry has a champion."""
    main = world.platform.head("main")
    seed = world.checkout("seed", main, world.app_token())
    ok(world.make(seed, "ci-pipeline"))
    ok(world.make(seed, "commit-back", BRANCH="main"))  # nothing to commit: main's outputs
    assert world.platform.head("main") == main
    world.state["first_digest"] = deploy(world, main, "seed")
    client = MlflowClient(world.tracking_uri)
    assert client.get_model_version_by_alias(MODEL, "champion").version == "1"
    world.new_runs()


def test_a_params_only_pull_request_is_trained_and_committed_back_by_ci(world: World) -> None:
    alice = world.platform.user_token("alice")
    clone = world.checkout("alice", "main", alice)
    git(clone, "checkout", "-q", "-b", BRANCH)
    params = clone / "params.yaml"
    params.write_text(params.read_text().replace("      C: 1.0\n", "      C: 0.7\n", 1))
    commit(clone, "Lower C to 0.7", "alice")
    ok(push(clone, "-q", "origin", f"HEAD:refs/heads/{BRANCH}"))
    number = open_pull(world, alice, BRANCH, "Lower C")
    world.state["pr"] = str(number)
    contributor_sha = world.platform.head(BRANCH)
    runs = world.new_runs()
    assert ("ci", "push") not in {(w, e) for w, e, _ in runs}  # push CI is for main only
    # (the pull request is opened after the push: GitHub starts ci on `opened`)

    job = world.checkout("ci-1", contributor_sha, world.app_token())
    ok(world.make(job, "ci-pipeline"))
    committed = world.make(job, "commit-back", BRANCH=BRANCH)
    assert committed.returncode != 0, committed.stdout + committed.stderr  # this commit is stale
    assert "committed them as" in committed.stderr
    world.gate_check(contributor_sha, passed=False)
    bot_sha = world.platform.head(BRANCH)
    assert bot_sha != contributor_sha
    author = git(job, "log", "-1", "--format=%an <%ae>", bot_sha)
    assert author.startswith("churnops-bot")
    touched = git(job, "diff", "--name-only", contributor_sha, bot_sha).split()
    assert "dvc.lock" in touched and "models/model_card.json" in touched
    assert all(
        p in ("dvc.lock", "models/model_card.json") or p.startswith("reports/") for p in touched
    )
    ok(
        world.make(
            job,
            "pr-report",
            PR=str(number),
            BASE="origin/main",
            GITHUB_TOKEN=world.app_token(),
            CHURNOPS_BOT=world.platform.bot,
        )
    )
    # The bot's push (an App token, not GITHUB_TOKEN) starts CI on its commit, and only CI.
    assert world.new_runs() == [("ci", "pull_request", bot_sha)]
    world.state["bot_sha"] = bot_sha


def test_the_report_is_one_bot_comment_naming_the_champion_with_plots(world: World) -> None:
    pr = int(world.state["pr"])
    ours = [c for c in world.platform.comments if c["issue"] == pr and c["body"].startswith(MARKER)]
    assert [c["user"]["login"] for c in ours] == [world.platform.bot]
    body = ours[0]["body"]
    card = json.loads(world.platform.git("show", "main:models/model_card.json"))
    assert f"compared against the champion `{card['model_sha256'][:12]}`" in body
    assert "The candidate on the test split (1409 customers)" in body  # as before CT's holdout
    assert "```mermaid\nxychart-beta" in body and "| Actual churn \\ Predicted churn |" in body
    assert "| `train.hyperparams.logistic_regression.C` | 1.0000 | 0.7000 | -0.3000 |" in body


def test_the_rerun_on_the_bot_commit_is_a_no_op_and_passes_the_gate(world: World) -> None:
    bot_sha = world.state["bot_sha"]
    # A comment by someone else that starts like the report's is never edited.
    spoof = {
        "id": 999,
        "issue": int(world.state["pr"]),
        "body": f"{MARKER}\nnot the bot",
        "user": {"login": "mallory"},
        "html_url": "x",
    }
    world.platform.comments.insert(0, spoof)
    job = world.checkout("ci-2", bot_sha, world.app_token())
    run = ok(world.make(job, "ci-pipeline"))
    assert "Stage 'train' didn't change" in run or "Data and pipelines are up to date" in run
    ok(world.make(job, "commit-back", BRANCH=BRANCH))
    world.gate_check(bot_sha, passed=True)
    assert world.platform.head(BRANCH) == bot_sha  # nothing committed: no loop
    ok(
        world.make(
            job,
            "pr-report",
            PR=world.state["pr"],
            BASE="origin/main",
            GITHUB_TOKEN=world.app_token(),
            CHURNOPS_BOT=world.platform.bot,
        )
    )
    assert spoof["body"] == f"{MARKER}\nnot the bot"
    bots = [c for c in world.platform.comments if c["user"]["login"] == world.platform.bot]
    assert len(bots) == 1
    assert world.new_runs() == []


def merge(world: World, token: str, sha: str) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"{world.platform.api}/repos/{REPOSITORY}/pulls/{world.state['pr']}/merge",
        method="PUT",
        data=json.dumps({"sha": sha, "merge_method": "merge"}).encode(),
        headers={"Authorization": f"Bearer {token}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def test_merging_needs_the_gate_on_the_head_and_ships_what_was_reviewed(world: World) -> None:
    maintainer = world.platform.user_token("maya")
    world.platform.statuses = [
        s for s in world.platform.statuses if s["sha"] != world.state["bot_sha"]
    ]
    status, answer = merge(world, maintainer, world.state["bot_sha"])
    assert status == 405 and "gate" in answer["message"]
    world.gate_check(world.state["bot_sha"], passed=True)
    status, answer = merge(world, maintainer, world.state["bot_sha"])
    assert status == 200, answer
    world.state["merge_sha"] = answer["sha"]
    assert world.new_runs() == [("cd", "push", answer["sha"]), ("ci", "push", answer["sha"])]


def test_cd_releases_the_merged_model_to_staging_then_production(world: World) -> None:
    merged = world.state["merge_sha"]
    digest = deploy(world, merged, "cd")
    main = world.checkout("after-cd", "main", world.platform.user_token("maya"))
    for overlay in ("staging", "production"):
        text = (main / "k8s" / "overlays" / overlay / "kustomization.yaml").read_text()
        assert digest in text
    client = MlflowClient(world.tracking_uri)
    champion = client.get_model_version_by_alias(MODEL, "champion")
    card = json.loads((main / "models" / "model_card.json").read_text())
    assert champion.version == "2" and champion.tags["model_sha256"] == card["model_sha256"]
    # Release commits change only overlays: they start CI on main, never CD (no loop).
    assert {w for w, _, _ in world.new_runs()} == {"ci"}
    world.state["second_digest"] = digest


def test_production_refuses_when_main_changed_what_it_deploys(world: World) -> None:
    verified = world.platform.head("main")
    change = world.checkout("base-change", "main", world.app_token())
    hpa = change / "k8s" / "base" / "horizontalpodautoscaler.yaml"
    hpa.write_text(hpa.read_text() + "# an unreviewed change\n")
    commit(change, "base change", "churnops-bot")
    ok(push(change, "-q", "origin", "HEAD:main"))
    job = world.checkout("refused-production", verified, world.app_token())
    refused = world.make(
        job, "release", OVERLAY="production", VERIFIED=verified, DIGEST="sha256:" + "1" * 64
    )
    assert refused.returncode != 0 and "k8s/base/horizontalpodautoscaler.yaml" in refused.stderr
    assert "sha256:" + "1" * 64 not in git(
        job, "show", "origin/main:k8s/overlays/production/kustomization.yaml"
    )
    world.new_runs()


def test_rollback_restores_model_image_and_data_then_the_champion(world: World) -> None:
    job = world.checkout("rollback", "main", world.app_token())
    ok(world.make(job, "rollback", VERSION="1"))
    main = world.checkout("after-rollback", "main", world.platform.user_token("maya"))
    production = (main / "k8s" / "overlays" / "production" / "kustomization.yaml").read_text()
    assert world.state["first_digest"] in production
    params = yaml.safe_load(git(main, "show", f"{world.state['merge_sha']}^1:params.yaml"))
    assert params["train"]["hyperparams"]["logistic_regression"]["C"] == 1.0
    client = MlflowClient(world.tracking_uri)
    assert client.get_model_version_by_alias(MODEL, "champion").version == "1"
    assert world.new_runs() == []  # [skip ci]: CD does not rebuild what is deployed
    ok(world.dvc(main, "pull", "--quiet"))
    first = client.get_model_version(MODEL, "1")
    assert (
        hashlib.sha256((main / "models" / "model.onnx").read_bytes()).hexdigest()
        == first.tags["model_sha256"]
    )


def test_a_refused_rollback_push_leaves_the_champion_where_it_was(world: World) -> None:
    job = world.checkout("refused-rollback", "main", world.app_token())
    git(
        job,
        "remote",
        "set-url",
        "origin",
        world.platform.remote(world.platform.user_token("alice")),
    )
    refused = world.make(job, "rollback", VERSION="2")
    assert (
        refused.returncode != 0 and "Changes must be made through a pull request" in refused.stderr
    )
    client = MlflowClient(world.tracking_uri)
    assert client.get_model_version_by_alias(MODEL, "champion").version == "1"


def test_a_fork_pull_request_is_trained_only_after_a_maintainer_reviews_it(world: World) -> None:
    # The fork: mallory's commit, which GitHub keeps under refs/pull/N/head.
    fork = world.checkout("mallory", "main", world.platform.user_token("mallory", write=False))
    params = fork / "params.yaml"
    ok(as_runner(["sed", "-i", "s/      C: 0.7$/      C: 0.9/", str(params)], fork))
    commit(fork, "C 0.9", "mallory")
    bundle = world.root / "fork.bundle"
    git(fork, "bundle", "create", "-q", str(bundle), "HEAD")
    sha = git(fork, "rev-parse", "HEAD")
    number = world.platform.open_fork_pull(bundle, "C 0.9", "mallory", "mallory/churnops", "c")
    assert world.new_runs() == []  # (GitHub starts ci on `opened`, without secrets)

    # CI on the fork's pull request: a read-only token, no secrets, no MLflow server.
    job = world.checkout("fork-ci", "main", world.platform.user_token("ci", write=False))
    unreadable = str(world.root / "no-remote-for-forks")
    ok(world.dvc(job, "remote", "add", "--local", "--force", "--default", "rehearsal", unreadable))
    git(job, "fetch", "-q", "origin", f"refs/pull/{number}/head")
    git(job, "checkout", "-q", sha)
    ok(world.make(job, "ci-pipeline", MLFLOW_TRACKING_URI="sqlite:///mlflow.db"))
    stale = world.make(job, "outputs-committed")
    assert stale.returncode != 0 and "a maintainer trains it" in stale.stderr
    summary = world.root / "summary.md"
    ok(as_runner(["touch", str(summary)], world.root))
    ok(world.make(job, "pr-report", BASE="origin/main", GITHUB_STEP_SUMMARY=str(summary)))
    assert "| `train.hyperparams.logistic_regression.C` | 0.7000 | 0.9000 |" in summary.read_text()
    assert not [c for c in world.platform.comments if c["issue"] == number]

    # A maintainer dispatches fork-training.yml with the commit they reviewed.
    mirror = world.checkout("fork-training", "main", world.app_token())
    token = {"GITHUB_TOKEN": world.app_token(), "PR": str(number)}
    moved = world.make(mirror, "fork-pr", SHA="0" * 40, **token)
    assert moved.returncode != 0 and "not the reviewed 000000000000" in moved.stderr
    ok(world.make(mirror, "fork-pr", SHA=sha, **token))
    assert world.platform.head(f"fork/{number}") == sha
    [trained] = [p for p in world.platform.pulls.values() if p["head"]["ref"] == f"fork/{number}"]
    [note] = [c for c in world.platform.comments if c["issue"] == number]
    assert note["user"]["login"] == world.platform.bot and f"#{trained['number']}" in note["body"]
    assert world.new_runs() == [("ci", "pull_request", sha)]

    # That pull request is one of this repository's: CI trains it and commits back.
    job = world.checkout("fork-ci-trained", sha, world.app_token())
    ok(world.make(job, "ci-pipeline"))
    assert world.make(job, "commit-back", BRANCH=f"fork/{number}").returncode != 0
    bot_sha = world.platform.head(f"fork/{number}")
    assert git(job, "log", "-1", "--format=%an", bot_sha).startswith("churnops-bot")
    assert world.new_runs() == [("ci", "pull_request", bot_sha)]


def open_pull(world: World, token: str, head: str, title: str, body: str = "") -> int:
    request = urllib.request.Request(
        f"{world.platform.api}/repos/{REPOSITORY}/pulls",
        method="POST",
        data=json.dumps({"title": title, "head": head, "base": "main", "body": body}).encode(),
        headers={"Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)["number"]


def test_nightly_ct_opens_a_bot_pull_request_that_ci_gates(world: World) -> None:
    """ct.yml's steps, then what create-pull-request does with the App's token."""
    job = world.checkout("ct", "main", world.app_token())
    ok(world.make(job, "data"))
    # The synthetic snapshot is seeded by its date: a fixed one keeps the verdict the same
    # on every day the test runs (the scheduled job ingests today's).
    ok(world.make(job, "ingest", SCENARIO="price_rise", DATE="2026-12-03"))
    ok(world.dvc(job, "pull", "--quiet", "gate"))
    ok(world.make(job, "evaluate-champion"))
    ok(world.make(job, "ct-pipeline"))
    # The verdict: champion and challenger on the same newest snapshot, which neither
    # trained on; the champion's numbers there are evaluate-champion's.
    compared = json.loads((job / "reports" / "gate.json").read_text())["comparison"]
    champion = json.loads((job / "reports" / "champion.json").read_text())
    assert compared["on"] == "newest_snapshot" and compared["rows"] == champion["rows"] == 500
    seen = champion["quality"] | champion["fairness"]
    for name, entry in compared["metrics"].items():
        assert entry["champion"] == pytest.approx(seen[name], abs=1e-6), name
    ok(world.dvc(job, "push", "--quiet"))
    ok(world.make(job, "register"))
    ok(world.make(job, "pr-report", BASE="origin/main"))
    body = (job / "build" / "report" / "report.md").read_text()
    assert body.startswith(MARKER) and "compared against the champion" in body
    assert "Both models scored on the same 500 customers of the newest snapshot" in body
    git(job, "checkout", "-q", "-b", "bot/retrain")
    git(job, "add", "data.dvc", "params.yaml", "dvc.lock", "models/model_card.json", "reports")
    commit(job, "ct: retrain on the newest data (schedule)", "churnops-bot")
    ok(push(job, "-q", "--force", "origin", "HEAD:refs/heads/bot/retrain"))
    sha = git(job, "rev-parse", "HEAD")
    number = open_pull(world, world.app_token(), "bot/retrain", "ct: retrain (schedule)", body)
    # The App's push starts the bot pull request's CI (GITHUB_TOKEN's would start none).
    assert world.new_runs() == [("ci", "pull_request", sha)]

    # Its CI: the committed outputs are already the pipeline's, so the gate decides alone.
    ci = world.checkout("ct-ci", sha, world.app_token())
    run = ok(world.make(ci, "ci-pipeline"))
    assert "didn't change" in run or "up to date" in run
    ok(world.make(ci, "commit-back", BRANCH="bot/retrain"))
    assert world.platform.head("bot/retrain") == sha
    gate = json.loads((ci / "reports" / "gate.json").read_text())
    client = MlflowClient(world.tracking_uri)
    challenger = client.get_model_version_by_alias(CANDIDATES, "challenger")
    card = json.loads((ci / "models" / "model_card.json").read_text())
    assert challenger.tags["model_sha256"] == card["model_sha256"]
    assert (
        gate["baseline"]
        == json.loads(world.platform.git("show", "main:models/model_card.json"))["model_sha256"]
    )
    assert world.platform.pulls[number]["state"] == "open"
