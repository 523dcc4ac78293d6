"""The Bento's and the UI's container images, built, pushed to a real registry, pulled back
by digest and run as the production manifest runs them.

The engine is Docker where a Docker daemon answers (GitHub's hosted runners), else podman
(here, where no Docker engine runs). The images are built from this working tree
(scripts/container/build-image.sh: the Bento, with podman a locally made stand-in for its
base image, `bentoml containerize --backend ENGINE`; build-ui-image.sh: ui/Containerfile),
pushed as CD pushes them (push-image.sh, as the registry's pusher identity) to Debian's
docker-registry on loopback (tests/support/oci_registry.py), and the digest the push
answered is released into a copy of the overlay (`churnops set-image`). The containers run
what that release names, pulled by digest as the pull identity into a clean store (podman;
docker has one store, so the built image is removed first). Each container is started from its
Deployment in `kubectl kustomize k8s/overlays/production`, translated to the engine's
`run` flags: the pod's user and groups, a read-only root filesystem whose
only writable paths are the emptyDir mounts (size-limited tmpfs), no capabilities, no
privilege escalation, the memory and CPU limits, env, command, working directory, the
named port (published on 127.0.0.1 only), the probes' paths and budgets and the grace
period. So the manifest and the image are checked against each other by running them.
What is mocked: the cluster itself (the engine stands in for the kubelet) and the retrain
trigger's GitHub token (a dummy file in place of the Secret; GitHub is never called).

Where no engine can run containers these tests fail and say why: they never pass silently.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bentoml
import httpx
import pytest
from bentoml.exceptions import BentoMLException
from prometheus_client.parser import text_string_to_metric_families

from churnops import config, identity, schema, snapshots
from churnops.predictor import Predictor
from churnops.serving.metrics import FLUSH_SECONDS
from tests.support import k8s
from tests.support.net import free_port, wait_until
from tests.support.oci_registry import Registry, oci_registry

pytestmark = pytest.mark.slow

OVERLAY = Path("k8s/overlays/production")
LOCAL_IMAGE = "localhost/churnops-service:container-test"
LOCAL_UI_IMAGE = "localhost/churnops-ui:container-test"
MANIFEST_TYPES = (
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
)
BENTOML_HOME = Path("build/container/bentoml")
CUSTOMERS = 40


def _engine(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [env["CONTAINER_ENGINE"], *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def _remove(env: dict[str, str], name: str) -> None:
    """Kill and remove at once (podman waits 10 s first unless told; docker kills)."""
    wait = ["--time", "0"] if env["CONTAINER_ENGINE"] == "podman" else []
    _engine(env, "rm", "--force", *wait, name)


def _docker_answers() -> bool:
    docker = shutil.which("docker")
    return bool(docker) and subprocess.run([docker, "info"], capture_output=True).returncode == 0


@pytest.fixture(scope="session")
def container_env(repo_root: Path) -> dict[str, str]:
    """Environment for the engine and the build; fails, saying why, where containers can't run."""
    engine = "docker" if _docker_answers() else "podman"
    env = {
        **os.environ,
        "CONTAINER_ENGINE": engine,
        "PATH": f"{repo_root / '.venv' / 'bin'}:{os.environ['PATH']}",
        "CONTAINERS_CONF": str(repo_root / "scripts" / "container" / "containers.conf"),
        "BENTOML_HOME": str(repo_root / BENTOML_HOME),
    }
    if shutil.which(engine) is None:
        pytest.fail(
            "cannot run containers here: no docker daemon, podman not installed "
            "(`make setup-container`)"
        )
    info = _engine(env, "info")
    if info.returncode != 0:
        pytest.fail(f"cannot run containers here: `{engine} info` failed:\n{info.stderr}")
    return env


@pytest.fixture(scope="session")
def registry() -> Iterator[Registry]:
    """The OCI registry both images go through (Debian's docker-registry, htpasswd auth)."""
    with oci_registry() as running:
        yield running


@pytest.fixture(scope="session")
def run_env(container_env: dict[str, str], registry: Registry) -> Iterator[dict[str, str]]:
    """Where the containers run: logged in as the pull identity and, with podman, a store of
    its own that holds nothing built here, so each image run is the one pulled by digest."""
    env = {**container_env, **registry.client_env(container_env["CONTAINER_ENGINE"], "puller")}
    if container_env["CONTAINER_ENGINE"] != "podman":
        yield env  # docker has one store: publish() removes the built image before the pull
        return
    store = Path(tempfile.mkdtemp(prefix="churnops-store-", dir="/var/tmp"))
    (store / "storage.conf").write_text(
        f'[storage]\ndriver = "overlay"\ngraphroot = "{store}/root"\nrunroot = "{store}/run"\n'
    )
    env["CONTAINERS_STORAGE_CONF"] = str(store / "storage.conf")
    yield env
    _engine(env, "rmi", "--all", "--force")
    shutil.rmtree(store, ignore_errors=True)


@dataclass
class Image:
    """An image built here, pushed to the registry and pulled back by digest into run_env."""

    ref: str  # REGISTRY/REPOSITORY@sha256:..., as pulled
    digest: str  # what the registry answered the push with
    source: str  # the Bento's tag, or the build script
    size_mb: float
    seconds: dict[str, float]  # build, push, pull
    config: dict[str, Any]

    def summary(self) -> str:
        times = ", ".join(f"{step} {value:.0f} s" for step, value in self.seconds.items())
        return f"image {self.ref} ({self.source}) {self.size_mb:.0f} MB; {times}"


def container_script(
    repo_root: Path, env: dict[str, str], script: str, ref: str
) -> subprocess.CompletedProcess:
    """scripts/container/SCRIPT --backend ENGINE REF, as `make image`/`ui-image`/`push-image`
    run it."""
    return subprocess.run(
        [repo_root / "scripts" / "container" / script, "--backend", env["CONTAINER_ENGINE"], ref],
        cwd=repo_root, env=env, capture_output=True, text=True, timeout=1800,
    )  # fmt: skip


def publish(
    repo_root: Path,
    build_env: dict[str, str],
    run_env: dict[str, str],
    registry: Registry,
    local: str,
    repository: str,
) -> tuple[str, str, dict[str, float]]:
    """Push LOCAL to the registry as REPOSITORY's path (churnops.yaml's repository, on this
    registry) as the pusher, then pull it back by the digest the push answered into run_env.
    Returns the reference pulled, the digest and the seconds each step took."""
    engine = build_env["CONTAINER_ENGINE"]
    remote = f"{registry.host}/{repository.split('/', 1)[1]}"
    push_env = {**build_env, **registry.client_env(engine, "pusher")}
    _engine(push_env, "tag", local, f"{remote}:container-test")
    start = time.monotonic()
    pushed = container_script(repo_root, push_env, "push-image.sh", f"{remote}:container-test")
    seconds = {"push": time.monotonic() - start}
    _engine(push_env, "rmi", f"{remote}:container-test")  # the tag only: LOCAL keeps the image
    assert pushed.returncode == 0, f"push of {local} failed:\n{pushed.stderr[-4000:]}"
    digest = pushed.stdout.strip().splitlines()[-1]
    if engine == "docker":
        _engine(build_env, "rmi", local)
    ref = f"{remote}@{digest}"
    start = time.monotonic()
    pulled = _engine(run_env, "pull", ref, timeout=900)
    seconds["pull"] = time.monotonic() - start
    assert pulled.returncode == 0, f"pull of {ref} failed:\n{pulled.stderr[-4000:]}"
    return ref, digest, seconds


def build_and_publish(
    repo_root: Path,
    build_env: dict[str, str],
    run_env: dict[str, str],
    registry: Registry,
    script: str,
    local: str,
    repository: str,
) -> Image:
    """Build LOCAL with SCRIPT (base image and layers cached by the engine), then publish()."""
    start = time.monotonic()
    built = container_script(repo_root, build_env, script, local)
    assert built.returncode == 0, f"{script} failed:\n{built.stderr[-4000:]}"
    seconds = {"build": time.monotonic() - start}
    ref, digest, moved = publish(repo_root, build_env, run_env, registry, local, repository)
    inspected = json.loads(_engine(run_env, "image", "inspect", ref).stdout)[0]
    source = (built.stdout.split() or [script])[-1]  # build-image.sh prints the Bento's tag
    return Image(ref, digest, source, inspected["Size"] / 1e6, seconds | moved, inspected["Config"])


@pytest.fixture(scope="session")
def image(
    repo_root: Path, container_env: dict[str, str], run_env: dict[str, str], registry: Registry
) -> Image:
    """The Bento's image built from this tree, pushed, and pulled back by digest."""
    repository = identity.load(repo_root).image_repository
    return build_and_publish(
        repo_root, container_env, run_env, registry, "build-image.sh", LOCAL_IMAGE, repository
    )


@pytest.fixture(scope="session")
def ui_image(
    repo_root: Path, container_env: dict[str, str], run_env: dict[str, str], registry: Registry
) -> Image:
    """The Streamlit UI's image (ui/Containerfile) built from this tree, pushed, pulled back."""
    repository = identity.load(repo_root).ui_image_repository
    return build_and_publish(
        repo_root, container_env, run_env, registry, "build-ui-image.sh", LOCAL_UI_IMAGE, repository
    )


@pytest.fixture(scope="session")
def manifest(
    repo_root: Path, image: Image, ui_image: Image, tmp_path_factory: pytest.TempPathFactory
) -> list[dict[str, Any]]:
    """The production overlay as CD releases it: `churnops set-image` writes the digests the
    registry answered into a copy of k8s/, which is then rendered."""
    release = tmp_path_factory.mktemp("release")
    shutil.copytree(repo_root / "k8s", release / "k8s")
    for name, pushed in (("churnops-service", image), ("churnops-ui", ui_image)):
        done = subprocess.run(
            [repo_root / ".venv" / "bin" / "churnops", "set-image", "--overlay", OVERLAY.name,
             "--image", name, "--digest", pushed.digest, "--no-tag"],
            cwd=release, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
    return k8s.render(release / OVERLAY)


def _on_test_registry(spec_image: str, registry: Registry) -> str:
    """The manifest's image reference with this registry in place of its host (ghcr.io)."""
    return f"{registry.host}/{spec_image.split('/', 1)[1]}"


def _pod_spec(manifest: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return k8s.one(manifest, "Deployment", name)["spec"]["template"]["spec"]


def _quantity(value: str) -> str:
    """A Kubernetes memory quantity (256Mi) in podman's notation (256m: mebibytes)."""
    number, unit = re.fullmatch(r"(\d+)(Ki|Mi|Gi)?", str(value)).groups()
    return number + {"Ki": "k", "Mi": "m", "Gi": "g", None: ""}[unit]


@dataclass
class Container:
    """A container started from a Deployment's container spec, published on loopback."""

    name: str
    url: str
    spec: dict[str, Any]
    pod: dict[str, Any]
    start_to_ready: float
    env: dict[str, str]

    def exec(self, *command: str) -> subprocess.CompletedProcess:
        return _engine(self.env, "exec", self.name, *command)

    def logs(self) -> str:
        done = _engine(self.env, "logs", self.name)
        return (done.stdout + done.stderr)[-4000:]


def run_args(
    engine: str, pod: dict[str, Any], spec: dict[str, Any], image_ref: str, port: int
) -> list[str]:
    """`docker run` / `podman run` flags doing what the kubelet does with this pod and
    container spec, running IMAGE_REF in place of the spec's image (and where env names it)."""
    security = {**pod.get("securityContext", {}), **spec.get("securityContext", {})}
    args = ["--user", f"{security['runAsUser']}:{security['runAsGroup']}"]
    if "fsGroup" in pod.get("securityContext", {}):
        args += ["--group-add", str(pod["securityContext"]["fsGroup"])]
    if security.get("readOnlyRootFilesystem"):
        args += ["--read-only"]
        if engine == "podman":  # podman mounts tmpfs on /tmp, /run... of a read-only root
            args += ["--read-only-tmpfs=false"]
    for capability in security.get("capabilities", {}).get("drop", []):
        args += ["--cap-drop", capability]
    if security.get("allowPrivilegeEscalation") is False:
        args += ["--security-opt", "no-new-privileges"]
    limits = spec.get("resources", {}).get("limits", {})
    if "memory" in limits:
        args += ["--memory", _quantity(limits["memory"])]
    if "cpu" in limits:
        cpu = str(limits["cpu"])
        args += ["--cpus", str(int(cpu[:-1]) / 1000 if cpu.endswith("m") else float(cpu))]
    for variable in spec.get("env", []):
        assert "value" in variable, f"env {variable['name']} comes from the cluster: not emulated"
        value = image_ref if variable["value"] == spec["image"] else variable["value"]
        args += ["--env", f"{variable['name']}={value}"]
    volumes = {volume["name"]: volume for volume in pod.get("volumes", [])}
    for mount in spec.get("volumeMounts", []):
        volume = volumes[mount["name"]]
        assert "emptyDir" in volume, f"volume {mount['name']} is not an emptyDir: mount it first"
        size = volume["emptyDir"].get("sizeLimit")
        tmpfs = f"type=tmpfs,destination={mount['mountPath']},tmpfs-mode=777"
        args += ["--mount", tmpfs + (f",tmpfs-size={_quantity(size)}" if size else "")]
    if "workingDir" in spec:
        args += ["--workdir", spec["workingDir"]]
    # Docker's --entrypoint is one executable: the command's rest goes before the args.
    command = spec.get("command", [])
    if command:
        args += ["--entrypoint", command[0]]
    http = next(p for p in spec["ports"] if p["name"] == "http")
    args += ["--publish", f"127.0.0.1:{port}:{http['containerPort']}"]
    return [*args, image_ref, *command[1:], *spec.get("args", [])]


def start_container(
    pod: dict[str, Any],
    spec: dict[str, Any],
    registry: Registry,
    env: dict[str, str],
    extra: tuple[str, ...] = (),
) -> Container:
    """Run the image the spec names (from the test registry) detached and wait for its
    readiness probe, within the probes' budget."""
    port = free_port()
    name = f"churnops-test-{spec['name']}-{port}"
    flags = run_args(
        env["CONTAINER_ENGINE"], pod, spec, _on_test_registry(spec["image"], registry), port
    )
    start = time.monotonic()
    started = _engine(env, "run", "--detach", "--name", name, *extra, *flags)
    assert started.returncode == 0, f"{env['CONTAINER_ENGINE']} run failed:\n{started.stderr}"
    container = Container(name, f"http://127.0.0.1:{port}", spec, pod, 0.0, env)
    startup = spec.get("startupProbe", {"failureThreshold": 30, "periodSeconds": 2})
    budget = startup["failureThreshold"] * startup["periodSeconds"]
    readiness = spec["readinessProbe"]["httpGet"]["path"]

    def ready() -> bool:
        state = _engine(env, "inspect", "--format", "{{.State.Running}}", name).stdout.strip()
        if state != "true":
            raise RuntimeError(f"container {name} exited:\n{container.logs()}")
        try:
            return httpx.get(container.url + readiness, timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_until(ready, budget, f"{readiness} of {spec['name']} (the startupProbe's budget)")
    except BaseException:
        print(container.logs())
        _remove(env, name)
        raise
    container.start_to_ready = time.monotonic() - start
    return container


def stop_container(container: Container) -> tuple[int, float]:
    """SIGTERM, then SIGKILL after the grace period, as the kubelet does: exit code, seconds."""
    grace = container.pod.get("terminationGracePeriodSeconds", 30)
    start = time.monotonic()
    _engine(container.env, "stop", "--time", str(grace), container.name, timeout=grace + 30)
    seconds = time.monotonic() - start
    code = _engine(
        container.env, "inspect", "--format", "{{.State.ExitCode}}", container.name
    ).stdout.strip()
    return int(code), seconds


@pytest.fixture(scope="session")
def report(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Write a line to the terminal even when output is captured (make test shows it)."""
    plugins = request.config.pluginmanager
    terminal, capture = plugins.get_plugin("terminalreporter"), plugins.get_plugin("capturemanager")

    def write(line: str) -> None:
        with capture.global_and_fixture_disabled():
            terminal.write_line(f"\n{line}")

    return write


@pytest.fixture(scope="module")
def service(
    image: Image,
    manifest: list[dict[str, Any]],
    registry: Registry,
    run_env: dict[str, str],
    report: Callable[[str], None],
) -> Iterator[Container]:
    """The API container of the churnops-service Deployment, running the pulled image."""
    pod = _pod_spec(manifest, "churnops-service")
    spec = next(c for c in pod["containers"] if c["name"] == "service")
    container = start_container(pod, spec, registry, run_env)
    report(f"container: {image.summary()}; start to ready {container.start_to_ready:.1f} s")
    yield container
    _remove(run_env, container.name)


def _metric(text: str, name: str) -> list[Any]:
    return [
        sample
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    ]


def test_image_runs_as_the_manifests_user_and_exposes_its_port(
    image: Image, manifest: list[dict[str, Any]]
) -> None:
    pod = _pod_spec(manifest, "churnops-service")
    spec = next(c for c in pod["containers"] if c["name"] == "service")
    security = {**pod["securityContext"], **spec["securityContext"]}
    # runAsNonRoot can only be verified by the kubelet when the image's USER is numeric.
    assert image.config["User"] == f"{security['runAsUser']}:{security['runAsGroup']}"
    assert security["runAsNonRoot"] and security["runAsUser"] != 0
    http = next(p for p in spec["ports"] if p["name"] == "http")
    assert f"{http['containerPort']}/tcp" in image.config["ExposedPorts"]
    service = k8s.one(manifest, "Service", "churnops-service")
    assert service["spec"]["ports"][0]["targetPort"] == "http"


def test_the_deployments_run_the_digests_the_registry_answered(
    repo_root: Path,
    manifest: list[dict[str, Any]],
    image: Image,
    ui_image: Image,
    registry: Registry,
) -> None:
    """The Deployments this file runs name, after the release, churnops.yaml's repositories
    at the pushed digests: what is run here is what the cluster would pull."""
    names = identity.load(repo_root)
    released = {
        "churnops-service": (names.image_repository, image),
        "churnops-retrain-trigger": (names.image_repository, image),
        "churnops-ui": (names.ui_image_repository, ui_image),
    }
    for deployment, (repository, pushed) in released.items():
        for container in _pod_spec(manifest, deployment)["containers"]:
            assert container["image"] == f"{repository}@{pushed.digest}"
            assert _on_test_registry(container["image"], registry) == pushed.ref


def test_the_registry_holds_the_pushed_manifest_and_wants_credentials(
    image: Image, registry: Registry
) -> None:
    """The digest is the registry's content address: the manifest it serves under it hashes
    to it. Without credentials, or with a wrong password, it serves and accepts nothing."""
    repository, digest = image.ref.split("/", 1)[1].split("@")
    manifest_url = f"http://{registry.host}/v2/{repository}/manifests/{digest}"
    accept = {"Accept": ", ".join(MANIFEST_TYPES)}
    served = httpx.get(manifest_url, headers=accept, auth=("puller", registry.passwords["puller"]))
    assert served.status_code == 200, served.text
    assert served.headers["Docker-Content-Digest"] == digest
    assert "sha256:" + hashlib.sha256(served.content).hexdigest() == digest
    upload = f"http://{registry.host}/v2/{repository}/blobs/uploads/"
    for auth in (None, ("pusher", "not-the-password")):
        assert httpx.get(manifest_url, headers=accept, auth=auth).status_code == 401
        assert httpx.post(upload, auth=auth).status_code == 401


def test_a_push_without_credentials_is_refused(
    repo_root: Path, image: Image, run_env: dict[str, str], registry: Registry
) -> None:
    anonymous = {**run_env, **registry.client_env(run_env["CONTAINER_ENGINE"], None)}
    ref = f"{registry.host}/churnops/anonymous:container-test"
    _engine(anonymous, "tag", image.ref, ref)
    try:
        pushed = container_script(repo_root, anonymous, "push-image.sh", ref)
    finally:
        _engine(anonymous, "rmi", ref)
    assert pushed.returncode != 0
    assert re.search(r"authentication required|unauthorized|no basic auth", pushed.stderr, re.I), (
        pushed.stderr
    )


def test_container_is_confined_as_the_manifest_says(service: Container) -> None:
    security = {**service.pod["securityContext"], **service.spec["securityContext"]}
    assert service.exec("id", "-u").stdout.strip() == str(security["runAsUser"])
    status = service.exec("cat", "/proc/1/status").stdout
    assert re.search(r"^CapEff:\s+0+$", status, re.M), status
    assert re.search(r"^NoNewPrivs:\s+1$", status, re.M), status
    written = service.exec("touch", "/home/bentoml/bento/written")
    assert written.returncode != 0 and "Read-only file system" in written.stderr


def test_writable_paths_are_the_ones_the_server_uses(service: Container) -> None:
    """Every emptyDir the manifest mounts is written by the running server (none is idle);
    that the server runs with only these writable is shown by the other tests."""
    for mount in service.spec["volumeMounts"]:
        listed = service.exec("ls", "-A", mount["mountPath"])
        assert listed.returncode == 0 and listed.stdout.strip(), f"{mount['mountPath']} unused"


@pytest.fixture(scope="module")
def customers(repo_root: Path) -> list[dict[str, Any]]:
    """Real customers from the data snapshots, as a JSON request body carries them."""
    frame = schema.features_frame(snapshots.read_snapshots(repo_root / config.DATA_DIR))
    frame = frame.astype({f.name: int for f in schema.FEATURES if f.kind == "binary"})
    return json.loads(frame.head(CUSTOMERS).to_json(orient="records"))


def test_container_scores_customers_with_the_gated_model(
    service: Container, customers: list[dict[str, Any]], repo_root: Path
) -> None:
    response = httpx.post(service.url + "/predict", json={"customers": customers}, timeout=30)
    assert response.status_code == 200, response.text
    served = [p["churn_probability"] for p in response.json()["predictions"]]
    columns = {f.name: [c[f.name] for c in customers] for f in schema.FEATURES}
    expected = Predictor(repo_root / config.MODELS_DIR / config.MODEL_FILE).churn_probability(
        columns
    )
    assert served == pytest.approx(expected.tolist(), abs=1e-6)
    assert httpx.get(service.url + "/livez", timeout=5).status_code == 200


def test_bentoml_clients_call_the_image_as_they_call_bentoml_serve(
    service: Container, customers: list[dict[str, Any]]
) -> None:
    """Consumers using BentoML's own clients: /schema.json from the image lists /predict."""
    plain = httpx.post(service.url + "/predict", json={"customers": customers[:3]}, timeout=30)
    with bentoml.SyncHTTPClient(service.url, timeout=30) as client:
        assert client.predict(customers=customers[:3]) == plain.json()
        with pytest.raises(BentoMLException, match=r"customers\[0\]\.tenure"):
            client.predict(customers=[{**customers[0], "tenure": "long"}])

    async def call() -> dict:
        async with bentoml.AsyncHTTPClient(service.url, timeout=30) as client:
            return await client.predict(customers=customers[:2])

    assert asyncio.run(call())["predictions"] == plain.json()["predictions"][:2]


def test_metadata_names_the_model_and_the_image_from_the_manifest(
    service: Container, image: Image, repo_root: Path
) -> None:
    """The Deployment's CHURNOPS_IMAGE (set by the overlay's replacement) reaches /metadata."""
    metadata = httpx.get(service.url + "/metadata", timeout=10).json()
    card = config.read_json(repo_root / config.MODELS_DIR / config.CARD_FILE)
    assert metadata["model_sha256"] == card["model_sha256"]
    assert metadata["image"] == image.ref  # the released reference, on the test registry


PREDICTIONS = "churnops_predictions_total"


def test_container_metrics_count_the_predictions(
    service: Container, customers: list[dict[str, Any]], repo_root: Path
) -> None:
    def scored() -> float:
        found = _metric(httpx.get(service.url + "/metrics", timeout=10).text, PREDICTIONS)
        return found[0].value if found else 0.0

    time.sleep(4 * FLUSH_SECONDS)  # earlier tests' answers are written by now
    before = scored()
    httpx.post(service.url + "/predict", json={"customers": customers[:5]}, timeout=30)
    wait_until(lambda: scored() == before + 5, 10, "the 5 predictions counted (50 ms flush)")
    text = httpx.get(service.url + "/metrics", timeout=10).text
    card = config.read_json(repo_root / config.MODELS_DIR / config.CARD_FILE)
    info = _metric(text, "churnops_model_info")
    assert info and info[0].labels["model_sha256"] == card["model_sha256"]


def test_sigterm_stops_the_container_cleanly(
    service: Container, report: Callable[[str], None]
) -> None:
    code, seconds = stop_container(service)
    logs = service.logs()
    assert code == 0, f"exit code {code} after SIGTERM:\n{logs}"
    grace = service.pod["terminationGracePeriodSeconds"]
    assert seconds < grace, f"took {seconds:.1f} s, the grace period is {grace} s"
    assert "Traceback" not in logs, logs
    report(f"container: SIGTERM to exit {seconds:.1f} s (exit code {code})")


def test_retrain_trigger_container_runs_from_the_same_image(
    manifest: list[dict[str, Any]],
    registry: Registry,
    run_env: dict[str, str],
    tmp_path: Path,
) -> None:
    """The trigger Deployment runs `python -m churnops.retraining.trigger` from the same image;
    its two token Secrets are dummy files here (GitHub is unreachable: the trigger starts
    with the cooldown running, as it does whenever GitHub cannot be asked)."""
    pod = _pod_spec(manifest, "churnops-retrain-trigger")
    spec = dict(next(c for c in pod["containers"] if c["name"] == "trigger"))
    binds: list[str] = []
    for name in ("github-token", "webhook-token"):
        (secret := tmp_path / name).mkdir()
        (secret / "token").write_text(f"dummy-{name}-for-the-container-test\n")
        (secret / "token").chmod(0o444)
        mount = next(m for m in spec["volumeMounts"] if m["name"] == name)
        binds += ["--volume", f"{secret}:{mount['mountPath']}:ro"]
    spec["volumeMounts"] = [
        m for m in spec["volumeMounts"] if m["name"] not in ("github-token", "webhook-token")
    ]
    # Loopback only: the start-up recovery asks a closed port instead of GitHub.
    spec["env"] = [
        {**e, "value": "http://127.0.0.1:9"} if e["name"] == "CHURNOPS_GITHUB_API_URL" else e
        for e in spec["env"]
    ]
    container = start_container(pod, spec, registry, run_env, extra=tuple(binds))
    try:
        assert "churnops_retrain_trigger_" in httpx.get(container.url + "/metrics", timeout=5).text
        code, seconds = stop_container(container)
        assert code == 0, f"exit code {code} after SIGTERM ({seconds:.0f} s):\n{container.logs()}"
    finally:
        _remove(run_env, container.name)


def test_ui_container_serves_the_app_as_the_manifest_runs_it(
    ui_image: Image,
    manifest: list[dict[str, Any]],
    registry: Registry,
    run_env: dict[str, str],
    report: Callable[[str], None],
) -> None:
    """The churnops-ui Deployment's container, from the UI image pulled by digest: its user,
    a read-only root with only /tmp (HOME) writable, the app page and Streamlit's health."""
    pod = _pod_spec(manifest, "churnops-ui")
    spec = next(c for c in pod["containers"] if c["name"] == "ui")
    security = {**pod["securityContext"], **spec["securityContext"]}
    assert ui_image.config["User"] == f"{security['runAsUser']}:{security['runAsGroup']}"
    container = start_container(pod, spec, registry, run_env)
    try:
        report(f"container: {ui_image.summary()}; start to ready {container.start_to_ready:.1f} s")
        assert container.exec("id", "-u").stdout.strip() == str(security["runAsUser"])
        written = container.exec("touch", "/app/written")
        assert written.returncode != 0 and "Read-only file system" in written.stderr
        page = httpx.get(container.url + "/", timeout=10)
        assert page.status_code == 200 and "<title>Streamlit</title>" in page.text
        assert httpx.get(container.url + "/_stcore/health", timeout=5).text == "ok"
        code, seconds = stop_container(container)
        assert code == 0, f"exit code {code} after SIGTERM ({seconds:.0f} s):\n{container.logs()}"
    finally:
        _remove(run_env, container.name)
