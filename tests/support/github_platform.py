"""A local stand-in for GitHub as the rehearsal uses it: one repository, its Git remote and API.

GitHub cannot be reached from here, so this server answers as GitHub documents it:

- **Git over HTTPS** (`/{owner}/{repo}.git`, the real `git http-backend`): every request
  needs a token (HTTP Basic, any user name, the token as password, as
  `https://x-access-token:TOKEN@github.com/...`), 401 without one; a read-only token gets
  403 on push. The bare repository's pre-receive hook is the ruleset on `main`: only its
  bypass actors (the App's bot and `web-flow`, GitHub's own merge) may update it; anyone
  else gets GH013 "Changes must be made through a pull request". Every accepted ref
  update is logged with its pusher (`pushes()`).
- **App installation tokens**: `POST /app/installations/{id}/access_tokens` with a JWT
  signed RS256 by the App's private key (iss = App id, exp at most 10 minutes ahead): 201
  and a `ghs_` token acting as `{slug}[bot]`; 401 for a bad or expired JWT, 404 for
  another installation.
- **Pull requests**: `POST/GET /repos/{r}/pulls` (422 for a missing head branch or a
  second open pull request of one head), `GET /repos/{r}/pulls/{n}`; a fork's pull
  request (`open_fork_pull`) has its head under `refs/pull/{n}/head` and its head repo
  the fork's, as GitHub keeps it; and
  `PUT /repos/{r}/pulls/{n}/merge`: 405 while a required status check of the head commit
  is not `success`, 409 when `sha` is not the head any more, else a real merge commit
  pushed as `web-flow`.
- **Issue comments**: list (paginated, `per_page` at most 100), create, and edit
  (`PATCH /repos/{r}/issues/comments/{id}`); each carries `user.login`. A read-only token
  gets 403 "Resource not accessible by integration" on every write.
- **Commit statuses**: `POST /repos/{r}/statuses/{sha}` and
  `GET /repos/{r}/commits/{ref}/status` (the combined state, the newest per context).
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

MERGER = "web-flow"  # the committer of GitHub's merge commits
RULESET_REFUSAL = (
    "GH013: Repository rule violations found for refs/heads/main.\n"
    "- Changes must be made through a pull request."
)
PRE_RECEIVE = """#!/bin/sh
# The ruleset on main: only its bypass actors may update it.
while read old new ref; do
  [ "$ref" = refs/heads/main ] || continue
  case " $BYPASS_ACTORS " in *" $REMOTE_USER "*) ;; *)
    echo "error: $RULESET_REFUSAL" >&2; exit 1;;
  esac
done
"""
POST_RECEIVE = """#!/bin/sh
while read old new ref; do echo "$REMOTE_USER $old $new $ref" >> "$PUSH_LOG"; done
"""


@dataclass(frozen=True)
class Identity:
    login: str
    write: bool


@dataclass(frozen=True)
class Push:
    pusher: str
    old: str
    new: str
    ref: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def app_jwt(private_key_pem: bytes, app_id: str, now: float | None = None) -> str:
    """The JWT an App signs for an installation token (as actions/create-github-app-token)."""
    now = time.time() if now is None else now
    key = serialization.load_pem_private_key(private_key_pem, password=None)
    header = _b64(json.dumps({"alg": "RS256", "typ": "JWT"}).encode())
    claims = _b64(json.dumps({"iat": int(now) - 60, "exp": int(now) + 540, "iss": app_id}).encode())
    signature = key.sign(f"{header}.{claims}".encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{header}.{claims}.{_b64(signature)}"


class GitHubPlatform:
    """One repository on a stand-in GitHub; `bare` is its Git remote, `api` its REST root."""

    def __init__(self, bare: Path, repository: str, app_slug: str = "churnops-bot") -> None:
        self.bare, self.repository = bare, repository
        self.bot = f"{app_slug}[bot]"
        self.app_id, self.installation_id = "4242", "77"
        self.app_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.tokens: dict[str, Identity] = {}
        self.pulls: dict[int, dict[str, Any]] = {}
        self.comments: list[dict[str, Any]] = []
        self.statuses: list[dict[str, Any]] = []
        self.required_checks = ("gate",)
        self._lock = threading.Lock()
        self._install_hooks()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self.api = f"{self.url}/api/v3"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,))

    # What a test sets up and reads back.
    def user_token(self, login: str, write: bool = True) -> str:
        token = f"ghp_{secrets.token_hex(16)}"
        self.tokens[token] = Identity(login, write)
        return token

    def remote(self, token: str) -> str:
        return f"{self.url.replace('://', f'://x-access-token:{token}@')}/{self.repository}.git"

    def app_private_key(self) -> bytes:
        return self.app_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def pushes(self) -> list[Push]:
        log = self.bare / "pushes.log"
        lines = log.read_text().splitlines() if log.exists() else []
        return [Push(*line.split(" ")) for line in lines]

    def open_fork_pull(self, bundle: Path, title: str, user: str, fork: str, branch: str) -> int:
        """A pull request from a fork: its commits (a bundle's HEAD) under refs/pull/N/head."""
        number = len(self.pulls) + 1
        self.git("fetch", "-q", str(bundle), f"HEAD:refs/pull/{number}/head")
        sha = self.git("rev-parse", f"refs/pull/{number}/head")
        self.pulls[number] = {
            "number": number,
            "state": "open",
            "merged": False,
            "title": title,
            "user": {"login": user},
            "head": {"ref": branch, "sha": sha, "repo": {"full_name": fork}},
            "base": {"ref": "main", "repo": {"full_name": self.repository}},
        }
        return number

    def head(self, ref: str) -> str:
        return self.git("rev-parse", f"refs/heads/{ref}")

    def __enter__(self) -> GitHubPlatform:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    # The repository.
    def _install_hooks(self) -> None:
        for name, script in (("pre-receive", PRE_RECEIVE), ("post-receive", POST_RECEIVE)):
            hook = self.bare / "hooks" / name
            hook.write_text(script)
            hook.chmod(0o755)

    def _hook_env(self, pusher: str) -> dict[str, str]:
        return {
            "REMOTE_USER": pusher,
            "BYPASS_ACTORS": f"{self.bot} {MERGER}",
            "RULESET_REFUSAL": RULESET_REFUSAL,
            "PUSH_LOG": str(self.bare / "pushes.log"),
        }

    def git(self, *args: str) -> str:
        done = subprocess.run(
            ["git", f"--git-dir={self.bare}", *args], capture_output=True, text=True, check=True
        )
        return done.stdout.strip()

    def _merge(self, pull: dict[str, Any]) -> str:
        """A merge commit of the head into the base, pushed as GitHub's own `web-flow`."""
        with tempfile.TemporaryDirectory() as work:
            run = {"cwd": work, "check": True, "capture_output": True}
            subprocess.run(
                ["git", "clone", "-q", "-b", pull["base"]["ref"], str(self.bare), "."], **run
            )
            committer = {
                **os.environ,
                "GIT_AUTHOR_NAME": "GitHub",
                "GIT_AUTHOR_EMAIL": "noreply@github.com",
                "GIT_COMMITTER_NAME": "GitHub",
                "GIT_COMMITTER_EMAIL": "noreply@github.com",
            }
            subprocess.run(
                [
                    "git",
                    "merge",
                    "--no-ff",
                    "-q",
                    "-m",
                    f"Merge pull request #{pull['number']} from {pull['head']['ref']}",
                    pull["head"]["sha"],
                ],
                env=committer,
                **run,
            )
            subprocess.run(
                ["git", "push", "-q", "origin", f"HEAD:{pull['base']['ref']}"],
                env={**os.environ, **self._hook_env(MERGER)},
                **run,
            )
        return self.head(pull["base"]["ref"])

    def _branch_exists(self, ref: str) -> bool:
        found = subprocess.run(
            ["git", f"--git-dir={self.bare}", "rev-parse", "--verify", "-q", f"refs/heads/{ref}"],
            capture_output=True,
        )
        return found.returncode == 0

    def _pull_view(self, pull: dict[str, Any]) -> dict[str, Any]:
        view = json.loads(json.dumps(pull))
        view["html_url"] = f"{self.url}/{self.repository}/pull/{pull['number']}"
        here = pull["head"]["repo"]["full_name"] == self.repository
        if pull["state"] == "open" and here and self._branch_exists(pull["head"]["ref"]):
            view["head"]["sha"] = self.head(pull["head"]["ref"])
        return view

    def combined_status(self, sha: str) -> dict[str, Any]:
        newest: dict[str, dict[str, Any]] = {}
        for status in self.statuses:
            if status["sha"] == sha:
                newest[status["context"]] = status
        states = [s["state"] for s in newest.values()]
        state = (
            "failure"
            if {"failure", "error"} & set(states)
            else "pending"
            if "pending" in states or not states
            else "success"
        )
        return {"sha": sha, "state": state, "statuses": list(newest.values())}

    def _mint(self, authorization: str) -> Identity | None:
        """The App whose JWT this is, if its signature and times are good."""
        try:
            header, claims, signature = authorization.removeprefix("Bearer ").split(".")
            self.app_key.public_key().verify(
                _unb64(signature),
                f"{header}.{claims}".encode(),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
            payload = json.loads(_unb64(claims))
        except Exception:
            return None
        now = time.time()
        if payload.get("iss") != self.app_id or not payload["iat"] - 60 <= now < payload["exp"]:
            return None
        if payload["exp"] - payload["iat"] > 660:
            return None
        return Identity(self.bot, True)

    # HTTP.
    def _handler(self) -> type[BaseHTTPRequestHandler]:
        platform = self
        repo_api = re.compile(rf"/api/v3/repos/{re.escape(self.repository)}(/.*)")
        git_path = re.compile(rf"/{re.escape(self.repository)}\.git(/.*)")

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _reply(
                self, status: int, payload: Any = None, headers: dict[str, str] | None = None
            ) -> None:
                body = b"" if payload is None else json.dumps(payload).encode()
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **(headers or {})}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks = []
                    while size := int(self.rfile.readline().split(b";")[0], 16):
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                    self.rfile.readline()
                    return b"".join(chunks)
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _identity(self) -> Identity | None:
                authorization = self.headers.get("Authorization", "")
                if authorization.startswith("Basic "):
                    _, _, token = base64.b64decode(authorization[6:]).decode().partition(":")
                    return platform.tokens.get(token)
                return platform.tokens.get(
                    authorization.removeprefix("Bearer ").removeprefix("token ")
                )

            def _handle(self) -> None:
                url = urlparse(self.path)
                body = self._body()
                if match := git_path.fullmatch(url.path):
                    return self._git_http(match[1], url.query, body)
                if (
                    url.path
                    == f"/api/v3/app/installations/{platform.installation_id}/access_tokens"
                ):
                    return self._access_token()
                identity = self._identity()
                if identity is None:
                    return self._reply(401, {"message": "Bad credentials"})
                match = repo_api.fullmatch(url.path)
                if match is None:
                    return self._reply(404, {"message": "Not Found"})
                sent = json.loads(body) if body else {}
                if self.command != "GET" and not identity.write:
                    return self._reply(403, {"message": "Resource not accessible by integration"})
                with platform._lock:
                    self._route(match[1], parse_qs(url.query), sent, identity)

            do_GET = do_POST = do_PATCH = do_PUT = _handle

            def _access_token(self) -> None:
                identity = platform._mint(self.headers.get("Authorization", ""))
                if identity is None:
                    return self._reply(401, {"message": "A JSON web token could not be decoded"})
                token = f"ghs_{secrets.token_hex(16)}"
                platform.tokens[token] = identity
                expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
                self._reply(201, {"token": token, "expires_at": expires})

            def _route(
                self, path: str, query: dict[str, list[str]], sent: dict[str, Any], who: Identity
            ) -> None:
                parts = path.strip("/").split("/")
                method = self.command
                if parts == ["pulls"] and method == "POST":
                    return self._create_pull(sent, who)
                if parts == ["pulls"] and method == "GET":
                    head = query.get("head", [""])[0].partition(":")[2]
                    state = query.get("state", ["open"])[0]
                    pulls = [
                        platform._pull_view(p)
                        for p in platform.pulls.values()
                        if (not head or p["head"]["ref"] == head) and state in ("all", p["state"])
                    ]
                    return self._reply(200, pulls)
                if len(parts) >= 2 and parts[0] == "pulls" and parts[1].isdigit():
                    pull = platform.pulls.get(int(parts[1]))
                    if pull is None:
                        return self._reply(404, {"message": "Not Found"})
                    if parts[2:] == ["merge"] and method == "PUT":
                        return self._merge_pull(pull, sent)
                    if parts[2:] == [] and method == "GET":
                        return self._reply(200, platform._pull_view(pull))
                if len(parts) == 3 and parts[0] == "issues" and parts[2] == "comments":
                    if int(parts[1]) not in platform.pulls:
                        return self._reply(404, {"message": "Not Found"})
                    if method == "GET":
                        return self._list_comments(int(parts[1]), query)
                    if method == "POST":
                        return self._create_comment(int(parts[1]), sent, who)
                if parts[:2] == ["issues", "comments"] and len(parts) == 3 and method == "PATCH":
                    comment = next((c for c in platform.comments if str(c["id"]) == parts[2]), None)
                    if comment is None:
                        return self._reply(404, {"message": "Not Found"})
                    comment["body"] = sent["body"]
                    return self._reply(200, comment)
                if parts[0] == "statuses" and len(parts) == 2 and method == "POST":
                    if sent.get("state") not in ("error", "failure", "pending", "success"):
                        return self._reply(422, {"message": "Validation Failed"})
                    status = {"sha": parts[1], "context": sent.get("context", "default"), **sent}
                    platform.statuses.append(status)
                    return self._reply(201, status)
                if parts[0] == "commits" and parts[2:] == ["status"] and method == "GET":
                    ref = parts[1]
                    sha = platform.head(ref) if platform._branch_exists(ref) else ref
                    return self._reply(200, platform.combined_status(sha))
                return self._reply(404, {"message": "Not Found"})

            def _create_pull(self, sent: dict[str, Any], who: Identity) -> None:
                head, base = sent.get("head", ""), sent.get("base", "")
                if not platform._branch_exists(head) or not platform._branch_exists(base):
                    return self._reply(
                        422,
                        {
                            "message": "Validation Failed",
                            "errors": [{"field": "head", "code": "invalid"}],
                        },
                    )
                if any(
                    p["head"]["ref"] == head and p["state"] == "open"
                    for p in platform.pulls.values()
                ):
                    return self._reply(
                        422, {"message": f"A pull request already exists for {head}."}
                    )
                number = len(platform.pulls) + 1
                platform.pulls[number] = {
                    "number": number,
                    "state": "open",
                    "merged": False,
                    "title": sent.get("title", ""),
                    "user": {"login": who.login},
                    "head": {
                        "ref": head,
                        "sha": platform.head(head),
                        "repo": {"full_name": platform.repository},
                    },
                    "base": {"ref": base, "repo": {"full_name": platform.repository}},
                }
                self._reply(201, platform._pull_view(platform.pulls[number]))

            def _merge_pull(self, pull: dict[str, Any], sent: dict[str, Any]) -> None:
                view = platform._pull_view(pull)
                if pull["state"] != "open":
                    return self._reply(405, {"message": "Pull Request is not mergeable"})
                if sent.get("sha") and sent["sha"] != view["head"]["sha"]:
                    return self._reply(
                        409,
                        {"message": "Head branch was modified. Review and try the merge again."},
                    )
                status = platform.combined_status(view["head"]["sha"])
                passed = {s["context"] for s in status["statuses"] if s["state"] == "success"}
                for check in platform.required_checks:
                    if check not in passed:
                        return self._reply(
                            405, {"message": f'Required status check "{check}" is expected.'}
                        )
                pull["head"]["sha"] = view["head"]["sha"]
                sha = platform._merge(pull)
                pull.update(state="closed", merged=True, merge_commit_sha=sha)
                self._reply(
                    200, {"sha": sha, "merged": True, "message": "Pull Request successfully merged"}
                )

            def _list_comments(self, number: int, query: dict[str, list[str]]) -> None:
                per_page = min(int(query.get("per_page", ["30"])[0]), 100)
                page = int(query.get("page", ["1"])[0])
                ours = [c for c in platform.comments if c["issue"] == number]
                self._reply(200, ours[(page - 1) * per_page : page * per_page])

            def _create_comment(self, number: int, sent: dict[str, Any], who: Identity) -> None:
                identifier = len(platform.comments) + 1
                page = f"{platform.url}/{platform.repository}/pull/{number}"
                comment = {
                    "id": identifier,
                    "issue": number,
                    "body": sent["body"],
                    "user": {"login": who.login},
                    "html_url": f"{page}#issuecomment-{identifier}",
                }
                platform.comments.append(comment)
                self._reply(201, comment)

            def _git_http(self, path: str, query: str, body: bytes) -> None:
                identity = self._identity()
                if identity is None:
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="GitHub"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                pushing = path.endswith("git-receive-pack") or "service=git-receive-pack" in query
                if pushing and not identity.write:
                    repository, login = platform.repository, identity.login
                    message = f"Permission to {repository}.git denied to {login}.".encode()
                    self.send_response(403)
                    self.send_header("Content-Length", str(len(message)))
                    self.end_headers()
                    self.wfile.write(message)
                    return
                env = {
                    "PATH": os.environ["PATH"],
                    "GIT_PROJECT_ROOT": str(platform.bare.parent),
                    "GIT_HTTP_EXPORT_ALL": "1",
                    "PATH_INFO": f"/{platform.bare.name}{path}",
                    "REQUEST_METHOD": self.command,
                    "QUERY_STRING": query,
                    "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                    "CONTENT_LENGTH": str(len(body)),
                    "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
                    "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
                    "REMOTE_ADDR": "127.0.0.1",
                    **platform._hook_env(identity.login),
                }
                done = subprocess.run(
                    ["git", "http-backend"], input=body, env=env, capture_output=True, check=False
                )
                head, _, payload = done.stdout.partition(b"\r\n\r\n")
                headers = [line.split(": ", 1) for line in head.decode().split("\r\n") if line]
                status = next((int(v.split()[0]) for k, v in headers if k.lower() == "status"), 200)
                self.send_response(status)
                for name, value in headers:
                    if name.lower() != "status":
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler
