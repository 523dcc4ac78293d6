"""Serving benchmark: this service against the bare limit and `mlflow models serve`, side by side.

Same machine, same run, same ONNX model (and, for MLflow, the same sklearn pipeline the
ONNX model was exported from). wrk drives single-customer requests and batches of 100
at 16 connections; the churnops service and the bare Starlette + onnxruntime app are
measured in alternating rounds and the median of each is reported, because the machine
is shared and its load moves. Beside requests per second and p99 latency, the server's
CPU time per request is measured (from /proc), which is what the throughput ratio
converges to when the server is CPU-bound, and which another process' load hardly moves.

The whole machine, as each is best run: churnops as it ships (one BentoML worker per core,
metrics, drift window and validation on), and the bare app with one and with two uvicorn
workers; the ratios are against the better of the two, body by body. Both run the same
uvicorn with the same HTTP parser and event loop; wrk is one thread on the same cores.

Also measured: time from `bentoml serve` to ready, resident memory, the deployment
latency (gated model -> `churnops bento` -> the Bento serving its first prediction),
and batch scoring rows/s as a ratio to the bare onnxruntime call on the same rows.

Run: make bench-serving   (writes bench/RESULTS-serving.md)
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pandas as pd
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from churnops import schema  # noqa: E402
from churnops.config import MODEL_FILE, PIPELINE, TEST_SET  # noqa: E402
from churnops.predictor import Predictor  # noqa: E402
from churnops.serving.score import score_file  # noqa: E402
from tests.support.net import free_port, wait_until  # noqa: E402

BIN = Path(sys.executable).parent
RESULTS = ROOT / "bench" / "RESULTS-serving.md"
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "8"))
CONNECTIONS = 16
SCORING_ROWS = 100_000
BARE_WORKERS = (1, 2)


@dataclass
class Server:
    name: str
    process: subprocess.Popen
    url: str
    started_in: float

    def pids(self) -> list[int]:
        parent = psutil.Process(self.process.pid)
        return [parent.pid, *(child.pid for child in parent.children(recursive=True))]

    def cpu_seconds(self) -> float:
        total = 0.0
        for pid in self.pids():
            with contextlib.suppress(psutil.NoSuchProcess):
                times = psutil.Process(pid).cpu_times()
                total += times.user + times.system
        return total

    def worker_rss_mb(self) -> float:
        """Resident memory of the process that serves requests (the newest descendant)."""
        newest = max(self.pids(), key=lambda pid: psutil.Process(pid).create_time())
        return psutil.Process(newest).memory_info().rss / 2**20

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def start(name: str, command: list[str], ready_path: str, env: dict[str, str], port: int) -> Server:
    log = open(Path(tempfile.gettempdir()) / f"bench-serving-{name}.log", "w")  # noqa: SIM115
    began = time.perf_counter()
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env={**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", **env},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited; see {log.name}")
        try:
            return httpx.get(url + ready_path, timeout=2).status_code < 500
        except httpx.TransportError:
            return False

    server = Server(name, process, url, 0.0)
    try:
        wait_until(ready, 180, f"{name} ready")
    except BaseException:
        server.stop()
        raise
    server.started_in = time.perf_counter() - began
    return server


@dataclass
class Load:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    cpu_us_per_request: float
    failures: int


def _percentile_ms(wrk_output: str, percent: int) -> float:
    """A latency percentile from wrk's --latency table, in ms (NaN if wrk printed none)."""
    found = re.search(rf"^\s+{percent}%\s+([\d.]+)(us|ms|s)$", wrk_output, re.MULTILINE)
    if found is None:
        return float("nan")
    return float(found.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[found.group(2)]


def wrk(server: Server, body: bytes, seconds: int = SECONDS) -> Load:
    """wrk at CONNECTIONS connections posting `body` to /predict (or /invocations)."""
    path = "/invocations" if server.name == "mlflow" else "/predict"
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(
            'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
            f"wrk.body = {json.dumps(body.decode())}\n"
        )
    cpu_before = server.cpu_seconds()
    run = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{CONNECTIONS}",
            f"-d{seconds}s",
            "--timeout",
            "30s",
            "--latency",
            "-s",
            script.name,
            server.url + path,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    cpu = server.cpu_seconds() - cpu_before
    os.unlink(script.name)
    out = run.stdout
    total = int(re.search(r"(\d+) requests in", out).group(1))
    failures = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    failures += sum(int(n) for n in errors.groups()) if errors else 0
    return Load(
        requests_per_second=float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        p50_ms=_percentile_ms(out, 50),
        p99_ms=_percentile_ms(out, 99),
        cpu_us_per_request=cpu / max(total, 1) * 1e6,
        failures=failures,
    )


def customers() -> list[dict]:
    """Held-out customers as a JSON body carries them (flags as 0/1, missing as null)."""
    frame = schema.features_frame(pd.read_parquet(ROOT / TEST_SET))
    frame = frame[frame["total_charges"].notna()]  # MLflow's DataFrame needs no nulls here
    records = frame.to_dict("records")
    binary = [f.name for f in schema.FEATURES if f.kind == "binary"]
    for record in records:
        for name in binary:
            record[name] = int(record[name])
    return records


def mlflow_model_uri(store: Path) -> str:
    """The sklearn pipeline the ONNX model came from, logged into a throwaway MLflow store."""
    import joblib
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{store / 'mlflow.db'}")
    mlflow.set_experiment("bench-serving")
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            joblib.load(ROOT / PIPELINE),
            name="sklearn-pipeline",
            serialization_format="cloudpickle",
            pip_requirements=["scikit-learn", "pandas", "cloudpickle"],
        )
    return info.model_uri


@dataclass
class Series:
    loads: list[Load] = field(default_factory=list)

    def median(self, attribute: str) -> float:
        return statistics.median(getattr(load, attribute) for load in self.loads)


def serve_churnops(
    env: dict[str, str] | None = None, target: str = "churnops.serving.service:Churnops"
) -> Server:
    port = free_port()
    return start(
        "churnops",
        ["bentoml", "serve", target, "--host", "127.0.0.1", "--port", str(port)],
        "/readyz",
        env or {"CHURNOPS_MODEL_DIR": str(ROOT / "models")},
        port,
    )


def serve_bare(workers: int) -> Server:
    port = free_port()
    return start(
        f"bare, {workers} worker{'s' if workers > 1 else ''}",
        ["uvicorn", "--app-dir", "bench", "reference_app:app", "--host", "127.0.0.1",
         "--port", str(port), "--workers", str(workers), "--log-level", "warning"],
        "/predict",
        {"CHURNOPS_MODEL_DIR": str(ROOT / "models")},
        port,
    )  # fmt: skip


def deployment_latency() -> tuple[float, float, float]:
    """Seconds from a gated models/ to its Bento answering /predict: (build, serve, total)."""
    with tempfile.TemporaryDirectory() as home:
        env = {"BENTOML_HOME": home}
        began = time.perf_counter()
        tag = (
            subprocess.run(
                [BIN / "churnops", "bento"],
                cwd=ROOT,
                env={**os.environ, **env},
                check=True,
                capture_output=True,
                text=True,
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        built = time.perf_counter()
        server = serve_churnops(env, target=tag)
        try:
            body = {"customers": customers()[:1]}
            assert httpx.post(server.url + "/predict", json=body).status_code == 200
            answered = time.perf_counter()
        finally:
            server.stop()
    return built - began, answered - built, answered - began


def scoring() -> dict[str, float]:
    """Batch scoring rows/s (Parquet in and out, validation, rejects) vs bare onnxruntime."""
    frame = pd.read_parquet(ROOT / TEST_SET)
    frame = pd.concat([frame] * (SCORING_ROWS // len(frame) + 1)).head(SCORING_ROWS)
    with tempfile.TemporaryDirectory() as tmp:
        source, target = Path(tmp) / "in.parquet", Path(tmp) / "out.parquet"
        frame.to_parquet(source, index=False)
        began = time.perf_counter()
        score_file(source, target, ROOT / "models")
        scored = SCORING_ROWS / (time.perf_counter() - began)
    features = schema.features_frame(frame)
    columns = {name: features[name].tolist() for name in schema.FEATURE_NAMES}
    predictor = Predictor(ROOT / "models" / MODEL_FILE)
    began = time.perf_counter()
    predictor.churn_probability(columns)
    bare = SCORING_ROWS / (time.perf_counter() - began)
    return {"score_rows_per_s": scored, "onnx_rows_per_s": bare, "ratio": scored / bare}


def profile(server: Server, body: bytes) -> list[tuple[float, str]]:
    """Where the churnops worker's time goes under load (py-spy), top frames by share."""
    if shutil.which("py-spy") is None and not (BIN / "py-spy").exists():
        return []
    worker = max(server.pids(), key=lambda pid: psutil.Process(pid).create_time())
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "profile.txt"
        spy = subprocess.Popen(
            [
                BIN / "py-spy",
                "record",
                "-p",
                str(worker),
                "-d",
                str(SECONDS - 2),
                "-r",
                "200",
                "-f",
                "raw",
                "-o",
                str(raw),
                "--nonblocking",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wrk(server, body)
        spy.wait(timeout=60)
        samples: dict[str, int] = {}
        total = 0
        for line in raw.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            total += int(count)
            for frame in {
                f.split(" (")[0] + " (" + f.rsplit("/", 1)[-1].split(":")[0]
                for f in stack.split(";")
            }:
                samples[frame] = samples.get(frame, 0) + int(count)
    interesting = re.compile(
        r"middleware|Middleware|predict|Predictor|Session.run|observe|RequestParser|decode|"
        r"validate|h11|httptools|H11|HttpTools|solve_dependencies|write"
    )
    ranked = sorted(
        ((100 * n / total, f) for f, n in samples.items() if interesting.search(f)), reverse=True
    )
    return ranked[:25]


def main() -> None:
    people = customers()
    one = json.dumps({"customers": people[:1]}).encode()
    hundred = json.dumps({"customers": people[:100]}).encode()
    bodies = {"1 customer": one, "100 customers": hundred}
    mlflow_bodies = {
        label: json.dumps({"dataframe_records": json.loads(body)["customers"]}).encode()
        for label, body in bodies.items()
    }
    load_before = os.getloadavg()
    results: dict[tuple[str, str], Series] = {}
    servers = [*(serve_bare(n) for n in BARE_WORKERS), serve_churnops()]
    bare, churnops = servers[0], servers[-1]
    try:
        for server in servers:  # warm each before measuring
            for body in bodies.values():
                wrk(server, body, 2)
        for _ in range(ROUNDS):
            for server in servers:
                for label, body in bodies.items():
                    results.setdefault((server.name, label), Series()).loads.append(
                        wrk(server, body)
                    )
        memory = {"bare": bare.worker_rss_mb(), "churnops": churnops.worker_rss_mb()}
        hot = {label: profile(churnops, body) for label, body in bodies.items()}
        startup = churnops.started_in
    finally:
        for server in servers:
            server.stop()

    with tempfile.TemporaryDirectory() as store:
        uri = mlflow_model_uri(Path(store))
        port = free_port()
        mlflow = start(
            "mlflow",
            [
                "mlflow",
                "models",
                "serve",
                "-m",
                uri,
                "--env-manager",
                "local",
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-w",
                "1",
            ],
            "/ping",
            {"MLFLOW_TRACKING_URI": f"sqlite:///{Path(store) / 'mlflow.db'}"},
            port,
        )
        try:
            for label, body in mlflow_bodies.items():
                wrk(mlflow, body, 2)
                results[("mlflow", label)] = Series([wrk(mlflow, body)])
            memory["mlflow"] = mlflow.worker_rss_mb()
        finally:
            mlflow.stop()

    build_s, serve_s, deploy_s = deployment_latency()
    batch = scoring()
    write_results(
        results,
        memory,
        startup,
        (build_s, serve_s, deploy_s),
        batch,
        hot,
        load_before,
        os.getloadavg(),
    )
    print(RESULTS.read_text())


def write_results(results, memory, startup, deploy, batch, hot, load_before, load_after) -> None:
    names = [name for name, label in results if label == "1 customer"]
    bares = [name for name in names if name.startswith("bare")]

    def best_bare(label: str) -> Series:
        return max(
            (results[(n, label)] for n in bares), key=lambda s: s.median("requests_per_second")
        )

    def row(name: str, label: str) -> str:
        s = results[(name, label)]
        ref = best_bare(label)
        return (
            f"| {name} | {label} | {s.median('requests_per_second'):,.0f} | "
            f"{s.median('p50_ms'):.1f} | {s.median('p99_ms'):.1f} | "
            f"{s.median('cpu_us_per_request'):,.0f} | "
            f"{s.median('requests_per_second') / ref.median('requests_per_second'):.2f}x | "
            f"{s.median('p99_ms') / ref.median('p99_ms'):.2f}x | "
            f"{ref.median('cpu_us_per_request') / s.median('cpu_us_per_request'):.2f}x | "
            f"{sum(load.failures for load in s.loads)} |"
        )

    lines = [
        "# Serving benchmark",
        "",
        f"Command: `make bench-serving` (`python bench/serving.py`), {ROUNDS} alternating rounds "
        f"of {SECONDS} s per server and body, wrk -t1 -c{CONNECTIONS}, medians reported.",
        f"Machine: {platform.platform()}, {psutil.cpu_count()} cores, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB, Python {platform.python_version()}; "
        f"load average {load_before[0]:.1f} before and {load_after[0]:.1f} after "
        "(a machine shared with other work: compare the ratios, not the absolute numbers).",
        f"Run at {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        "",
        f'The whole machine: churnops as shipped (BentoML `workers="cpu_count"`: '
        f"{psutil.cpu_count()} workers here; validation, churnops metrics, BentoML metrics and "
        "the shared drift window on), the bare Starlette + onnxruntime app with 1 and with 2 "
        "uvicorn workers, the same uvicorn with httptools and uvloop; wrk uses one thread on "
        "the same cores. Ratios are against the better bare server for that body.",
        "",
        "| server | body | req/s | p50 ms | p99 ms | server CPU us/req | req/s vs best bare | "
        "p99 vs best bare | CPU efficiency vs best bare | failed |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label in ("1 customer", "100 customers"):
        for name in names:
            lines.append(row(name, label))
    for label in ("1 customer", "100 customers"):
        ratio = results[("churnops", label)].median("requests_per_second") / results[
            ("mlflow", label)
        ].median("requests_per_second")
        lines.append("")
        lines.append(f"churnops vs `mlflow models serve`, {label}: {ratio:.1f}x the requests/s.")
    lines += [
        "",
        "## Startup, memory, deployment",
        "",
        f"- `bentoml serve` to /readyz 200 (model loaded, warm-up prediction done): "
        f"{startup:.1f} s",
        f"- Resident memory per serving worker: churnops {memory['churnops']:.0f} MiB, "
        f"bare {memory['bare']:.0f} MiB, mlflow {memory['mlflow']:.0f} MiB",
        f"- Deployment latency, gated models/ to the new Bento answering /predict: "
        f"{deploy[2]:.1f} s (`churnops bento`: import + `bentoml build` {deploy[0]:.1f} s; "
        f"`bentoml serve` of the Bento to its first answer {deploy[1]:.1f} s); target < 30 s",
        "",
        "## Batch scoring",
        "",
        f"`churnops score` of {SCORING_ROWS:,} customers, Parquet in and out with validation "
        f"and a rejects file: {batch['score_rows_per_s']:,.0f} rows/s; the bare onnxruntime "
        f"call on the same rows in memory: {batch['onnx_rows_per_s']:,.0f} rows/s; ratio "
        f"{batch['ratio']:.2f}.",
    ]
    for label, frames in hot.items():
        if not frames:  # py-spy is not installed
            continue
        lines += [
            "",
            f"## Where the churnops worker's time goes (py-spy, {label} per request)",
            "",
            "Share of the worker's samples in which the frame is on the stack (frames overlap).",
            "",
            "| share | frame |",
            "|---:|---|",
            *(f"| {share:.1f}% | `{frame}` |" for share, frame in frames),
        ]
    RESULTS.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
