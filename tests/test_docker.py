"""No Docker engine runs in CI: check that what the image runs works here, with the same commands."""

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def instruction(name: str) -> str:
    """The last instruction of a kind, continuation lines joined."""
    joined = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    lines = [line for line in joined.splitlines() if line.startswith(name + " ")]
    assert lines, f"Dockerfile has no {name}"
    return lines[-1][len(name) + 1 :].strip()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_image_installs_through_the_same_source_as_make():
    makefile = (ROOT / "Makefile").read_text()
    cpu_index = "https://download.pytorch.org/whl/cpu"
    assert "-c constraints.txt" in makefile and cpu_index in makefile
    assert f"pip install -c constraints.txt --extra-index-url {cpu_index} -e ." in DOCKERFILE
    assert "torch==2.13.0+cpu" in (ROOT / "constraints.txt").read_text().splitlines()
    assert DOCKERFILE.startswith("#") and "FROM python:3.11-slim" in DOCKERFILE
    assert re.search(r"^USER \d+", DOCKERFILE, re.M), "the image must not run as root"


def test_dockerignore_keeps_what_the_image_copies():
    ignored = (ROOT / ".dockerignore").read_text().split()
    for copied in re.findall(r"^COPY (\S+)", DOCKERFILE, re.M):
        assert copied not in ignored


def test_start_command_serves_healthz_and_healthcheck_passes():
    command = json.loads(instruction("CMD"))
    assert command[:3] == ["python", "-m", "app"]
    assert "THEATER_HOST=0.0.0.0" in DOCKERFILE
    port = free_port()
    command = [sys.executable, *command[1:]]
    # The image listens on 0.0.0.0:8000; here loopback and a free port (the test machine need not expose it).
    env = {**os.environ, "THEATER_HOST": "127.0.0.1", "THEATER_PORT": str(port)}
    server = subprocess.Popen(command, cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
                    assert response.status == 200
                    break
            except OSError:
                assert server.poll() is None, "the start command exited"
                assert time.time() < deadline, "no /healthz within 60 s"
                time.sleep(0.3)
        healthcheck = json.loads(instruction("HEALTHCHECK").split("CMD", 1)[1].strip())
        healthcheck = [sys.executable, *healthcheck[1:]]
        assert subprocess.run(healthcheck, timeout=10, env=env).returncode == 0
    finally:
        server.terminate()
        server.wait(timeout=10)
