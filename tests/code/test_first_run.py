"""A newcomer's first-run errors: one line naming the cause and the fix, never a traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def run(*command: str | Path, env: dict[str, str] | None = None, cwd: Path | None = None):
    return subprocess.run(
        [str(c) for c in command], capture_output=True, text=True, env=env, cwd=cwd, timeout=300
    )


def our_lines(stderr: str) -> list[str]:
    """What the scripts said (make's own `*** ... Error` footer aside)."""
    return [line for line in stderr.splitlines() if line and "***" not in line]


def stub(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text(f"#!/bin/bash\n{body}\n")
    path.chmod(0o755)
    return path


def test_a_missing_python_says_what_to_install_or_pass(tmp_path: Path) -> None:
    done = run(SCRIPTS / "first-run/check-python", tmp_path / "python3")
    assert done.returncode == 1
    [line] = our_lines(done.stderr)
    assert "no " in line and "install Python 3.11.4 to 3.13" in line and "PYTHON=" in line


@pytest.mark.parametrize("version", ["3.10.13", "3.11.2", "3.14.0"])
def test_an_unsupported_python_names_its_version_and_the_supported_ones(
    tmp_path: Path, version: str
) -> None:
    major, minor, patch = (int(p) for p in version.split("."))
    ok = (3, 11, 4) <= (major, minor, patch) < (3, 14)
    python = stub(
        tmp_path,
        "python3",
        f'case "$2" in *print*) echo {version};; *sys.exit*) exit {0 if ok else 1};; esac',
    )
    done = run(SCRIPTS / "first-run/check-python", python)
    assert done.returncode == 1
    [line] = our_lines(done.stderr)
    assert f"is Python {version}" in line and "3.11.4 to 3.13" in line and "PYTHON=" in line


def test_a_python_without_venv_says_to_install_python3_venv(tmp_path: Path) -> None:
    python = stub(
        tmp_path, "python3", 'case "$2" in *print*) echo 3.12.1;; *ensurepip*) exit 1;; esac'
    )
    done = run(SCRIPTS / "first-run/check-python", python)
    assert done.returncode == 1
    [line] = our_lines(done.stderr)
    assert "cannot create a venv" in line and "python3-venv" in line


def test_supported_pythons_pass(tmp_path: Path) -> None:
    assert run(SCRIPTS / "first-run/check-python", sys.executable).returncode == 0


def test_no_network_to_the_package_index_is_one_line(tmp_path: Path) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there now
    env = {
        k: v for k, v in os.environ.items() if "proxy" not in k.lower() and not k.startswith("PIP_")
    }
    env |= {"PIP_CONFIG_FILE": os.devnull, "PIP_INDEX_URL": f"http://127.0.0.1:{port}/simple"}
    log = tmp_path / "pip.log"
    done = run(
        SCRIPTS / "first-run/pip-install",
        sys.executable,
        log,
        "--no-cache-dir",
        "no-such-pkg-x",
        env=env,
    )
    assert done.returncode == 1
    [line] = our_lines(done.stderr)
    assert "cannot reach the package index" in line and "PIP_INDEX_URL" in line
    assert str(log) in line and log.exists()


def test_a_taken_port_names_the_port_and_port_variable(repo_root: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run("make", "--no-print-directory", "serve", f"PORT={port}", cwd=repo_root)
    assert done.returncode != 0
    [line] = our_lines(done.stderr)
    assert f"port {port} is taken" in line and "make serve PORT=" in line
    assert "Traceback" not in done.stderr + done.stdout


def test_a_free_port_passes_and_a_bogus_one_is_named(repo_root: Path) -> None:
    check = SCRIPTS / "first-run/check-port"
    assert run(check, sys.executable, "0").returncode == 1
    [line] = our_lines(run(check, sys.executable, "http").stderr)
    assert "PORT='http' is not a port number" in line
    with socket.socket() as probe:
        probe.bind(("0.0.0.0", 0))
        free = probe.getsockname()[1]
    assert run(check, sys.executable, str(free)).returncode == 0


def _bin(tmp_path: Path, *tools: str) -> Path:
    """A PATH folder holding only these real tools."""
    folder = tmp_path / "bin"
    folder.mkdir(exist_ok=True)
    for tool in tools:
        (folder / tool).symlink_to(
            subprocess.run(
                ["bash", "-c", f"command -v {tool}"], capture_output=True, text=True
            ).stdout.strip()
        )
    return folder


def test_no_apt_get_says_to_use_the_systems_package_manager(tmp_path: Path) -> None:
    env = {"PATH": str(_bin(tmp_path, "grep", "id", "find"))}
    done = run("/bin/bash", SCRIPTS / "apt-install", "wrk", env=env)
    assert done.returncode == 1
    [line] = our_lines(done.stderr)
    assert "no apt-get" in line and "install wrk" in line


def test_not_root_and_no_sudo_says_what_to_run(tmp_path: Path) -> None:
    folder = _bin(tmp_path, "grep", "find")
    stub(folder, "id", "echo 1000")
    stub(folder, "sudo", "exit 1")
    stub(folder, "apt-get", "exit 0")
    done = run("/bin/bash", SCRIPTS / "apt-install", "wrk", env={"PATH": str(folder)})
    assert done.returncode == 1
    [line] = our_lines(done.stderr)
    assert "needs root" in line and "sudo apt-get install wrk" in line


def test_an_unknown_package_is_named(tmp_path: Path) -> None:
    folder = _bin(
        tmp_path, "grep", "find", "id", "mktemp", "rm", "awk", "tr", "cut", "touch", "env"
    )
    # Not root (GitHub's runners): passwordless sudo, which runs the command as given.
    stub(folder, "sudo", 'while [ "${1#-}" != "$1" ]; do shift; done; "$@"')
    stub(
        folder,
        "apt-get",
        'for a; do [ "$a" = install ] && '
        '{ echo "E: Unable to locate package churnops-no-such-package"; exit 100; }; done; exit 0',
    )
    env = {"PATH": str(folder), "CHURNOPS_APT_STAMP": str(tmp_path / "apt-updated")}
    done = run("/bin/bash", SCRIPTS / "apt-install", "churnops-no-such-package", env=env)
    assert done.returncode == 1
    [line] = our_lines(done.stderr)
    assert "no Debian package named churnops-no-such-package" in line
