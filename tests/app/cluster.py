"""The scale-out as processes, for tests/app/test_redis_scale.py and `bench/load.py --redis`: redis-server, web
replicas (`python -m app`), workers (`python -m app.worker`) and nginx in front, each on a free loopback port with
its files in a temp dir, each stopped (then killed) in `finally`. Logs go to files, never to pipes nobody reads."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
NGINX_TEMPLATE = ROOT / "deploy" / "nginx.conf"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def accepts(port: int) -> bool:
    """Something listens on the loopback port (raises OSError while nothing does)."""
    with socket.create_connection(("127.0.0.1", port), timeout=1):
        return True


def find_binary(name: str) -> str | None:
    """Debian puts nginx in /usr/sbin, which a non-root PATH may lack."""
    return shutil.which(name) or next((p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.access(p, os.X_OK)), None)


@dataclass
class Proc:
    name: str
    process: subprocess.Popen[bytes]
    log: Path
    port: int = 0

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM, then SIGKILL if it has not exited within `timeout`."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)


def spawn(name: str, args: list[str], folder: Path, env: dict[str, str] | None = None, port: int = 0) -> Proc:
    log = folder / f"{name}.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            args,
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    return Proc(name, process, log, port)


def wait_for(check: Any, timeout: float, what: str, procs: list[Proc] | None = None) -> Any:
    """Poll `check()` until it returns a truthy value; fail with the processes' logs after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
            if value:
                return value
        except OSError:
            pass
        for proc in procs or []:
            if not proc.alive():
                raise RuntimeError(f"{proc.name} exited while waiting for {what}:\n{proc.output()[-3000:]}")
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {p.name}\n{p.output()[-1500:]}" for p in procs or [])
            raise TimeoutError(f"timed out waiting for {what}\n{logs}")
        time.sleep(0.05)


def get_json(url: str, timeout: float = 5) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


# ---------------------------------------------------------------------------------------------------------
# Redis


class RedisServer:
    """redis-server on a free port, no persistence, in a temp dir; `stop()` and `start()` again on the same port."""

    def __init__(self, binary: str, folder: Path) -> None:
        self.binary = binary
        self.folder = folder
        self.port = free_port()
        self.proc: Proc | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.folder),
            "--maxmemory-policy",
            "volatile-lru",
        ]
        self.proc = spawn("redis", args, self.folder, port=self.port)
        wait_for(self.ping, 10, "redis-server", [self.proc])

    def ping(self) -> bool:
        with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()  # as a crash: no goodbye to clients


# ---------------------------------------------------------------------------------------------------------
# The app


@dataclass
class Cluster:
    redis: RedisServer
    folder: Path
    env: dict[str, str]
    replicas: list[Proc] = field(default_factory=list)
    workers: list[Proc] = field(default_factory=list)

    def http(self, i: int) -> str:
        return f"http://127.0.0.1:{self.replicas[i].port}"

    def ws(self, i: int, kind: str = "text", fmt: str = "json") -> str:
        return f"ws://127.0.0.1:{self.replicas[i].port}/ws/{kind}?format={fmt}"

    @property
    def procs(self) -> list[Proc]:
        return [*(p for p in [self.redis.proc] if p is not None), *self.replicas, *self.workers]

    def add_replica(self) -> Proc:
        port = free_port()
        proc = spawn(f"web{len(self.replicas)}", [sys.executable, "-m", "app", "--port", str(port)], self.folder, self.env, port)
        self.replicas.append(proc)
        return proc

    def add_worker(self) -> Proc:
        proc = spawn(f"worker{len(self.workers)}", [sys.executable, "-m", "app.worker"], self.folder, self.env)
        self.workers.append(proc)
        return proc

    def wait_ready(self, workers: int | None = None, timeout: float = 60) -> None:
        """Every replica ready, and seeing `workers` live workers (default: all started and alive)."""
        expected = sum(w.alive() for w in self.workers) if workers is None else workers
        for i, proc in enumerate(self.replicas):

            def ready(i: int = i) -> bool:
                status, body = get_json(self.http(i) + "/readyz", timeout=2)
                return status == 200 and body.get("workers", 0) >= expected

            wait_for(ready, timeout, f"{proc.name} ready with {expected} workers", self.procs)


@contextlib.contextmanager
def cluster(redis_binary: str, replicas: int = 2, workers: int = 2, **settings: Any) -> Iterator[Cluster]:
    """Redis, `replicas` web replicas and `workers` workers on fake models (THEATER_* `settings` override)."""
    with tempfile.TemporaryDirectory(prefix="theater-scale-") as folder:
        redis = RedisServer(redis_binary, Path(folder))
        env = {
            "THEATER_MODELS": "fake",
            "THEATER_PREWARM": "0",
            "THEATER_FAKE_STEP_MS": "10",
            "THEATER_REDIS_CLAIM_SECONDS": "2",
            "THEATER_REDIS_TIMEOUT_SECONDS": "1",
            **{f"THEATER_{k.upper()}": str(v) for k, v in settings.items()},
        }
        env["THEATER_REDIS_URL"] = redis.url
        group = Cluster(redis, Path(folder), env)
        try:
            redis.start()
            for _ in range(replicas):
                group.add_replica()
            for _ in range(workers):
                group.add_worker()
            group.wait_ready()
            yield group
        finally:
            for proc in [*group.replicas, *group.workers]:
                with contextlib.suppress(Exception):
                    proc.stop(timeout=5)
            redis.stop()


# ---------------------------------------------------------------------------------------------------------
# nginx


def nginx_config(template: str, listen: int, upstreams: list[int], folder: Path) -> str:
    """deploy/nginx.conf with the test's ports and paths: the compose service name `web` becomes the replicas
    on loopback, the listen port a free one, and every file nginx writes goes to `folder`."""
    servers = "\n".join(f"        server 127.0.0.1:{port};" for port in upstreams)
    config, found = re.subn(r"^\s*server web:8000[^;]*;\s*$", servers, template, flags=re.M)
    assert found == 1, "deploy/nginx.conf should list the replicas as one `server web:8000;` line"
    config, found = re.subn(r"^(\s*)listen 8080;", rf"\1listen 127.0.0.1:{listen};", config, flags=re.M)
    assert found == 1, "deploy/nginx.conf should listen on 8080"
    config = re.sub(r"^user .*;$", "", config, flags=re.M)  # the compose image's user; here we run as ourselves
    paths = "\n".join(f"    {name}_temp_path {folder}/{name};" for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    config = config.replace("http {", f"http {{\n    access_log {folder}/access.log;\n{paths}", 1)
    return f"daemon off;\npid {folder}/nginx.pid;\nerror_log {folder}/error.log;\n{config}"


@contextlib.contextmanager
def nginx(binary: str, upstreams: list[int]) -> Iterator[int]:
    """nginx (Debian's) on a free port in front of `upstreams`, from deploy/nginx.conf; yields its port."""
    with tempfile.TemporaryDirectory(prefix="theater-nginx-") as name:
        folder = Path(name)
        os.chmod(folder, 0o777)  # run as root, nginx's workers run as nobody: they write the temp paths
        port = free_port()
        (folder / "nginx.conf").write_text(nginx_config(NGINX_TEMPLATE.read_text(), port, upstreams, folder))
        proc = spawn(
            "nginx", [binary, "-p", str(folder), "-c", str(folder / "nginx.conf"), "-e", str(folder / "error.log")], folder
        )
        try:
            wait_for(lambda: accepts(port), 10, "nginx", [proc])
            yield port
        finally:
            proc.stop(timeout=5)
