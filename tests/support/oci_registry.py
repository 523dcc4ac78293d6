"""A real OCI image registry on a loopback port, for tests: Debian's `docker-registry` (the
CNCF distribution registry, as run by teams that host their own), its storage in a
temporary directory, htpasswd basic auth on. It runs as whoever starts it (root or not).

The registry speaks plain HTTP on 127.0.0.1: podman and skopeo are told so by a
registries.conf marking it insecure (`client_env`); docker treats 127.0.0.0/8 as
insecure by default.

htpasswd auth is all-or-nothing: an identity that can log in can push and pull. The two
identities here (`pusher` for CD, `puller` for the cluster's imagePullSecret) are told
apart only by a registry with per-repository rights (GHCR: a token's `packages: write`
or `read`); here the tests show that without credentials nothing is pushed or pulled.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import yaml

from tests.support.net import free_port, wait_until
from tests.support.processes import stop_group

BINARY = Path("/usr/bin/docker-registry")
IDENTITIES = ("pusher", "puller")


@dataclass(frozen=True)
class Registry:
    host: str  # 127.0.0.1:PORT, the registry part of an image reference
    passwords: dict[str, str]  # identity -> password
    home: Path

    def client_env(self, engine: str, identity: str | None) -> dict[str, str]:
        """Environment for `engine login/push/pull` against this registry: the registries.conf
        that marks it insecure (plain HTTP), and an auth file of its own for `identity`
        (logged in, or none at all). One file serves both engines: podman reads
        REGISTRY_AUTH_FILE, docker DOCKER_CONFIG/config.json, in the same format."""
        auth = self.home / f"auth-{identity or 'anonymous'}"
        auth.mkdir(exist_ok=True)
        env = {
            "CONTAINERS_REGISTRIES_CONF": str(self.home / "registries.conf"),
            "REGISTRY_AUTH_FILE": str(auth / "config.json"),
            "DOCKER_CONFIG": str(auth),
        }
        if (auth / "config.json").exists():
            return env
        (auth / "config.json").write_text('{"auths": {}}')
        if identity is not None:
            login = subprocess.run(
                [engine, "login", "--username", identity, "--password-stdin", self.host],
                input=self.passwords[identity],
                env={**os.environ, **env},
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert login.returncode == 0, f"{engine} login as {identity}: {login.stderr}"
        return env


@contextmanager
def oci_registry() -> Iterator[Registry]:
    """Start the registry with the two identities; yields it, stops it and removes its data."""
    if not BINARY.exists():
        raise RuntimeError(f"{BINARY} is missing: `make setup-image-registry` installs it")
    home = Path(tempfile.mkdtemp(prefix="churnops-oci-"))
    port = free_port()
    host = f"127.0.0.1:{port}"
    passwords = {identity: secrets.token_hex(16) for identity in IDENTITIES}
    (home / "htpasswd").touch()
    for identity, password in passwords.items():  # bcrypt, the only hash the registry takes
        subprocess.run(
            ["htpasswd", "-iB", home / "htpasswd", identity],
            input=password, check=True, capture_output=True, text=True,
        )  # fmt: skip
    config = {
        "version": 0.1,
        "log": {"level": "warn", "accesslog": {"disabled": True}},
        "storage": {"filesystem": {"rootdirectory": str(home / "storage")}},
        "http": {"addr": host, "secret": secrets.token_hex(16)},
        "auth": {"htpasswd": {"realm": "churnops-test", "path": str(home / "htpasswd")}},
    }
    (home / "config.yml").write_text(yaml.safe_dump(config))
    (home / "registries.conf").write_text(f'[[registry]]\nlocation = "{host}"\ninsecure = true\n')
    log = home / "registry.log"
    server = subprocess.Popen(
        [BINARY, "serve", home / "config.yml"],
        stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip

    def answers() -> bool:
        if server.poll() is not None:
            raise RuntimeError(f"docker-registry exited: {log.read_text()}")
        try:  # 401: up, and asking for credentials
            return httpx.get(f"http://{host}/v2/", timeout=2).status_code == 401
        except httpx.TransportError:
            return False

    try:
        wait_until(answers, 30, "docker-registry answering /v2/")
        yield Registry(host, passwords, home)
    finally:
        stop_group(server, timeout=10)
        shutil.rmtree(home, ignore_errors=True)
