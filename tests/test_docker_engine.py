"""`docker run`, proven with a real Docker engine: the image is built from a copy of the repository and run as a
user would run it. (tests/test_docker.py checks the Dockerfile's structure and runs the image's commands here.)

Needs: `docker` and `dockerd` (Debian's docker.io; `make test` installs it), root or the docker group. The engine is
started when none answers. The base image is pulled, or, when the registry is unreachable, built once as a local
stand-in by scripts/docker_base.sh (then kept in the engine's image store). torch comes from the PyTorch CPU index
when it answers, else from a one-file index of the wheel this machine's pip finds, served on loopback for the
build (`--network host`). Outside CI a missing engine skips; in CI it fails (tests/ci.py).
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import websockets.sync.client

from tests.ci import skip_unless_ci

ROOT = Path(__file__).resolve().parents[1]
IMAGE = "diffusion-theater:test"
TORCH = "torch==2.13.0+cpu"  # constraints.txt's pin
PYTORCH_INDEX = "https://download.pytorch.org/whl/cpu"
INDEX_PORT = 39517  # the loopback index of a local torch wheel, when PyTorch's is unreachable
# A small run of each demo kind, and a long one to stop the container under (1000 DDPM steps).
SMALL_RUNS = {
    "text": {"length": 8, "steps": 4},
    "race": {"length": 8, "steps": 4},
    "image": {"digit": 3, "steps": 4},
    "image/grid": {"digit": 3, "steps": 2},
    "image/samplers": {"digit": 2, "ddpm_steps": 4, "ddim_steps": 2, "dpm_steps": 2},
    "race/image": {"digit": 7, "steps": 4},
}
LONG_RUN = {"sampler": "ddpm", "steps": 1000, "seed": 7}

pytestmark = [pytest.mark.slow, pytest.mark.real_model]  # it serves the committed checkpoints


def say(config: pytest.Config, line: str) -> None:
    """A line in pytest's own output (not captured): what the test did about the base image and the index."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"[docker] {line}")


def docker(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=check)


def engine_answers() -> bool:
    try:
        return docker("info", timeout=20, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def ensure_engine(config: pytest.Config) -> None:
    if shutil.which("docker") is None or shutil.which("dockerd") is None:
        skip_unless_ci("docker or dockerd is missing (apt-get install docker.io; `make test` does)")
    if engine_answers():
        return
    log = Path(tempfile.gettempdir()) / "theater-dockerd.log"
    say(config, f"no Docker engine answers: starting dockerd (log: {log})")
    with log.open("ab") as out:
        subprocess.Popen(["dockerd"], stdout=out, stderr=out, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if engine_answers():
            return
        time.sleep(1)
    skip_unless_ci(f"dockerd did not start within 60 s (see {log})")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def reachable(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=5)
        return True
    except OSError:
        return False


@contextlib.contextmanager
def torch_index(config: pytest.Config) -> Iterator[str]:
    """The index the build takes torch from: PyTorch's, or this machine's own wheel served on loopback."""
    if reachable(f"{PYTORCH_INDEX}/torch/"):
        say(config, f"torch from {PYTORCH_INDEX}")
        yield PYTORCH_INDEX
        return
    with tempfile.TemporaryDirectory() as folder:
        wheels = Path(folder) / "torch"
        wheels.mkdir()
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(wheels), TORCH],
            check=True,
            capture_output=True,
            timeout=300,
        )  # from pip's own configuration (a local wheel directory or mirror): no download from PyTorch
        handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=folder)
        try:  # one port run after run: the index's URL is a build argument, and a new one would rebuild the venv
            server = http.server.ThreadingHTTPServer(("127.0.0.1", INDEX_PORT), handler)
        except OSError:
            server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        say(config, f"{PYTORCH_INDEX} is unreachable: torch from this machine's wheel, served on loopback")
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}/"
        finally:
            server.shutdown()


def build(context: Path, index: str) -> tuple[str, float]:
    started = time.monotonic()
    result = subprocess.run(
        ["docker", "build", "--network", "host", "--build-arg", f"TORCH_INDEX={index}", "-t", IMAGE, str(context)],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout, time.monotonic() - started


def layers(image: str) -> list[str]:
    return json.loads(docker("image", "inspect", "-f", "{{json .RootFS.Layers}}", image).stdout)


@dataclass
class Built:
    context: Path
    first_build_s: float
    rebuild_s: float
    rebuild_log: str
    layers_before: list[str]
    layers_after: list[str]


@pytest.fixture(scope="module")
def built(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Built:
    """The image, built from a copy of the tracked files; then rebuilt after a code edit in that copy."""
    config = request.config
    ensure_engine(config)
    base = subprocess.run(["bash", str(ROOT / "scripts" / "docker_base.sh")], capture_output=True, text=True, timeout=900)
    for line in base.stderr.strip().splitlines()[-3:]:
        say(config, line)
    assert base.returncode == 0, base.stderr[-2000:]
    context = tmp_path_factory.mktemp("context")
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout.split(b"\0")
    for name in filter(None, (n.decode() for n in tracked)):
        source = ROOT / name
        if source.is_file():
            (context / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, context / name)
    with torch_index(config) as index:
        _log, first = build(context, index)
        before = layers(IMAGE)
        settings = context / "app" / "settings.py"
        settings.write_text(settings.read_text() + "\n# a code edit\n")
        log, again = build(context, index)
    say(config, f"built in {first:.0f} s; rebuilt after a code edit in {again:.0f} s")
    return Built(context, first, again, log, before, layers(IMAGE))


@dataclass
class Container:
    name: str
    port: int

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.http + path, timeout=10) as response:
            return json.loads(response.read())


def start(name: str, *options: str) -> Container:
    port = free_port()
    docker("rm", "-f", name, check=False)
    docker("run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:8000", "-e", "THEATER_PREWARM=0", *options, IMAGE)
    container = Container(name, port)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError):
            if container.get("/readyz")["status"] == "ready":
                return container
        time.sleep(0.5)
    raise AssertionError(f"{name} never became ready:\n{docker('logs', name, check=False).stderr[-3000:]}")


@pytest.fixture(scope="module")
def running(built: Built) -> Iterator[Container]:
    # The image's own HEALTHCHECK command, polled every 2 s instead of 30 (its timing is the Dockerfile's).
    container = start("theater-test-run", "--health-interval=2s", "--health-start-period=5s")
    yield container
    docker("rm", "-f", container.name, check=False)


def run(container: Container, kind: str, request: dict[str, Any]) -> list[dict[str, Any]]:
    with websockets.sync.client.connect(f"ws://127.0.0.1:{container.port}/ws/{kind}?format=json", max_size=None) as ws:
        ws.send(json.dumps(request))
        messages = []
        with contextlib.suppress(websockets.ConnectionClosed):
            for raw in ws:
                messages.append(json.loads(raw))
    return messages


def test_a_rebuild_after_a_code_edit_reuses_the_dependency_layer(built: Built) -> None:
    assert built.layers_before != built.layers_after  # the edit is in the image
    shared = [a for a, b in zip(built.layers_before, built.layers_after, strict=False) if a == b]
    # the base's layer, the user, the virtual environment (about 1.1 GB), pyproject and the checkpoints: all cached
    assert len(shared) >= 4, (built.layers_before, built.layers_after)
    assert "COPY --from=dependencies /opt/venv /opt/venv" in built.rebuild_log and built.rebuild_log.count("Using cache") >= 4
    assert built.rebuild_s < built.first_build_s or built.rebuild_s < 60


def test_the_image_history_keeps_no_build_argument(built: Built) -> None:
    history = docker("history", "--no-trunc", "--format", "{{.CreatedBy}}", IMAGE).stdout
    assert "TORCH_INDEX" not in history and "127.0.0.1" not in history and "download.pytorch.org" not in history


def test_ready_with_every_model_trained(running: Container) -> None:
    ready = running.get("/readyz")
    assert ready["status"] == "ready" and ready["untrained"] == [] and ready["problems"] == {}


@pytest.mark.parametrize("kind", list(SMALL_RUNS))
def test_a_run_of_every_demo_completes(running: Container, kind: str) -> None:
    messages = run(running, kind, SMALL_RUNS[kind])
    assert [m["type"] for m in messages][-1] == "done" and sum(m["type"] == "frame" for m in messages) >= 3


def test_the_healthcheck_turns_healthy(running: Container) -> None:
    deadline = time.monotonic() + 60
    status = ""
    while time.monotonic() < deadline:
        status = docker("inspect", "-f", "{{.State.Health.Status}}", running.name).stdout.strip()
        if status == "healthy":
            break
        time.sleep(1)
    assert status == "healthy", docker("inspect", "-f", "{{json .State.Health}}", running.name).stdout


def test_nothing_is_written_outside_tmp(running: Container) -> None:
    run(running, "text", SMALL_RUNS["text"])
    changed = [line.split(" ", 1)[1] for line in docker("diff", running.name).stdout.splitlines()]
    assert changed and all(path == "/tmp" or path.startswith("/tmp/") for path in changed), changed


def test_read_only_with_a_tmpfs_serves(built: Built) -> None:
    container = start("theater-test-read-only", "--read-only", "--tmpfs", "/tmp")
    try:
        assert run(container, "image", SMALL_RUNS["image"])[-1]["type"] == "done"
    finally:
        docker("rm", "-f", container.name, check=False)


def test_docker_stop_closes_an_open_run_with_1012_and_exits_0(built: Built) -> None:
    container = start("theater-test-stop")
    try:
        with websockets.sync.client.connect(f"ws://127.0.0.1:{container.port}/ws/image?format=json", max_size=None) as ws:
            ws.send(json.dumps(LONG_RUN))
            assert json.loads(ws.recv(timeout=60))["type"] == "frame"  # the run is going
            started = time.monotonic()
            stop = subprocess.Popen(["docker", "stop", "-t", "10", container.name])
            with contextlib.suppress(websockets.ConnectionClosed, TimeoutError):
                while True:
                    ws.recv(timeout=15)  # frames until the server closes
        code = ws.close_code
        assert stop.wait(timeout=30) == 0
        elapsed = time.monotonic() - started
        state = json.loads(docker("inspect", "-f", "{{json .State}}", container.name).stdout)
        assert code == 1012 and state["ExitCode"] == 0 and elapsed < 10, (code, state, elapsed)
    finally:
        docker("rm", "-f", container.name, check=False)
