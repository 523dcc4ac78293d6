"""`churnops fork-pr --pr N --sha SHA`: a fork's reviewed pull request, trained as a branch here.

A fork's pull request gets no secrets, so CI trains and reports it but cannot push its
outputs or commit them back. A maintainer who has reviewed its code runs fork-training.yml
(a workflow_dispatch: only people with write access can) with its number and the commit
they reviewed. This pushes exactly that commit (refused if the pull request has moved on
since) to the branch fork/N here and opens a pull request from it, whose CI trains it with
the repository's secrets and commits back like any other. Nothing of the fork runs here.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import urllib.error
from typing import Any

from churnops import github

SHA = re.compile(r"[0-9a-f]{40}")


class ForkError(RuntimeError):
    """The pull request cannot be trained as asked; nothing was pushed."""


def branch_for(pr: int) -> str:
    return f"fork/{pr}"


def _git(*args: str) -> str:
    done = subprocess.run(["git", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise ForkError(f"`git {' '.join(args)}` failed: {done.stderr.strip()}")
    return done.stdout.strip()


def reviewed_pull(pr: int, sha: str, repository: str, token: str, api: str) -> dict[str, Any]:
    """The open pull request from a fork whose head is still the reviewed commit."""
    if not SHA.fullmatch(sha):
        raise ForkError(f"{sha!r} is not a full commit sha (40 lowercase hex digits)")
    pull = github.request("GET", f"{api}/repos/{repository}/pulls/{pr}", token)
    if pull["state"] != "open":
        raise ForkError(f"pull request #{pr} is {pull['state']}")
    if pull["head"]["repo"]["full_name"] == repository:
        raise ForkError(f"pull request #{pr} is from a branch here: its own CI trains it")
    if pull["head"]["sha"] != sha:
        raise ForkError(
            f"pull request #{pr} is at {pull['head']['sha'][:12]}, not the reviewed "
            f"{sha[:12]}: review the new commits, then run again with that sha"
        )
    return pull


def mirror(pr: int, sha: str, repository: str, token: str, api: str) -> str:
    """Push the reviewed commit to fork/N and open (or keep) its pull request; its URL."""
    pull = reviewed_pull(pr, sha, repository, token, api)
    _git("fetch", "--quiet", "origin", f"refs/pull/{pr}/head")
    if _git("rev-parse", "FETCH_HEAD") != sha:
        raise ForkError(
            f"refs/pull/{pr}/head is not {sha[:12]}: the pull request moved: review it again"
        )
    branch = branch_for(pr)
    _git("push", "--quiet", "--force", "origin", f"{sha}:refs/heads/{branch}")
    owner = repository.split("/")[0]
    pulls = f"{api}/repos/{repository}/pulls"
    existing = github.request("GET", f"{pulls}?head={owner}:{branch}&state=open", token)
    if existing:
        return existing[0]["html_url"]
    opened = github.request(
        "POST",
        pulls,
        token,
        {
            "title": f"{pull['title']} (fork #{pr})",
            "head": branch,
            "base": pull["base"]["ref"],
            "body": (
                f"Trains #{pr} by @{pull['user']['login']} at {sha}, reviewed by a maintainer "
                f"before its code ran with this repository's secrets. Merge this one and "
                f"close #{pr}."
            ),
        },
    )
    comment = f"A maintainer reviewed {sha[:12]}; it is trained in #{opened['number']}."
    github.request(
        "POST", f"{api}/repos/{repository}/issues/{pr}/comments", token, {"body": comment}
    )
    return opened["html_url"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="churnops fork-pr", description=__doc__.splitlines()[0])
    parser.add_argument("--pr", type=int, required=True, help="the fork's pull request")
    parser.add_argument("--sha", required=True, help="the head commit you reviewed")
    args = parser.parse_args(argv)
    try:
        repository, token = os.environ["GITHUB_REPOSITORY"], os.environ["GITHUB_TOKEN"]
    except KeyError as missing:
        sys.exit(f"fork-pr: needs the environment variable {missing}")
    api = os.environ.get("GITHUB_API_URL", github.DEFAULT_API_URL)
    try:
        url = mirror(args.pr, args.sha, repository, token, api)
    except ForkError as exc:
        sys.exit(f"fork-pr: {exc}")
    except (urllib.error.URLError, TimeoutError) as exc:
        sys.exit(f"fork-pr: GitHub's API failed: {exc}")
    print(f"fork-pr: #{args.pr} at {args.sha[:12]} is trained in {url}")


if __name__ == "__main__":
    main()
