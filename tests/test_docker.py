"""No Docker engine runs in CI: check that what the image runs works here, with the same commands."""

import fnmatch
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
from pathlib import Path, PurePosixPath

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
CODE = ("app", "models", "templates", "static", "docs")  # what a code or checkpoint edit touches


def instructions() -> list[tuple[str, str]]:
    """Every instruction in order as (keyword, arguments), continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    result = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, arguments = line.partition(" ")
            result.append((keyword.upper(), arguments.strip()))
    return result


def instruction(name: str) -> str:
    """The last instruction of a kind."""
    found = [arguments for keyword, arguments in instructions() if keyword == name]
    assert found, f"Dockerfile has no {name}"
    return found[-1]


def index_of(predicate, what: str) -> int:
    found = [i for i, step in enumerate(instructions()) if predicate(*step)]
    assert found, f"Dockerfile has no {what}"
    return found[0]


def copies() -> list[tuple[int, list[str], str]]:
    """(position, sources, destination) of every COPY."""
    result = []
    for i, (keyword, arguments) in enumerate(instructions()):
        if keyword == "COPY":
            words = [w for w in arguments.split() if not w.startswith("--")]
            result.append((i, words[:-1], words[-1]))
    return result


def dependency_install() -> tuple[int, str]:
    """The RUN that installs the dependencies (from a generated requirements list, under the constraints)."""
    i = index_of(lambda k, a: k == "RUN" and "-r requirements.txt" in a, "RUN installing -r requirements.txt")
    return i, instructions()[i][1]


def project_install() -> tuple[int, str]:
    i = index_of(lambda k, a: k == "RUN" and re.search(r"pip install .*-e \.", a), "RUN installing the project")
    return i, instructions()[i][1]


def makefile_torch_index() -> str:
    match = re.search(r"^TORCH_INDEX \?= (\S+)$", (ROOT / "Makefile").read_text(), re.M)
    assert match, "Makefile has no TORCH_INDEX default"
    return match.group(1)


def requirement_name(requirement: str) -> str:
    """A requirement line's project name, lowercased ("torch==2.13.0" -> "torch")."""
    name = re.match(r"[A-Za-z0-9._-]+", requirement)
    assert name is not None, requirement
    return name.group(0).lower()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_image_installs_through_the_same_source_as_make():
    makefile = (ROOT / "Makefile").read_text()
    assert "-c constraints.txt $(TORCH_INDEX_OPTION)" in makefile and "$(PIP_INSTALL) -e ." in makefile
    assert "echo --extra-index-url $(TORCH_INDEX)" in makefile
    # Same index: the build argument defaults to the Makefile's, and the install uses it.
    assert f"ARG TORCH_INDEX={makefile_torch_index()}" in DOCKERFILE
    _, dependencies = dependency_install()
    assert 'pip install -c constraints.txt --extra-index-url "$TORCH_INDEX" -r requirements.txt' in dependencies
    # Same list: `pip install -e .` installs [project] dependencies; the image lists exactly those (see below).
    assert "['project']['dependencies']" in dependencies and "pyproject.toml" in dependencies
    # Same project install, editable, its dependencies already there.
    assert project_install()[1] == "pip install --no-deps -e ."
    assert "torch==2.13.0+cpu" in (ROOT / "constraints.txt").read_text().splitlines()
    assert DOCKERFILE.startswith("#") and re.search(r"^FROM python:3\.11-slim", DOCKERFILE, re.M)
    assert re.search(r"^USER \d+", DOCKERFILE, re.M), "the image must not run as root"


def test_dependencies_are_installed_before_the_code_is_copied():
    """A code or checkpoint edit must not invalidate the (1.1 GB) dependency layer."""
    deps_at, _ = dependency_install()
    manifests = [i for i, sources, _ in copies() if sorted(sources) == ["constraints.txt", "pyproject.toml"]]
    assert manifests and manifests[0] < deps_at, "COPY pyproject.toml constraints.txt must come before the install"
    before = [(sources, i) for i, sources, _ in copies() if i < deps_at]
    assert all(s in ("pyproject.toml", "constraints.txt") for sources, _ in before for s in sources), before
    code_at = [i for i, sources, _ in copies() for s in sources if PurePosixPath(s).parts[0] in CODE]
    assert code_at and min(code_at) > deps_at
    # The project itself after its packages are there, without touching the dependencies again.
    project_at, project = project_install()
    assert "--no-deps" in project.split()
    package_copies = [i for i, sources, _ in copies() if {"app", "models"} & set(sources)]
    assert len(package_copies) == 2 and max(package_copies) < project_at
    # Nothing after the install step reinstalls dependencies.
    later = [a for i, (k, a) in enumerate(instructions()) if k == "RUN" and i > deps_at and i != project_at]
    assert not any("pip install" in a for a in later), later


def test_torch_index_is_a_build_argument_and_torch_stays_cpu_only():
    steps = instructions()
    arg_at = index_of(lambda k, a: k == "ARG" and a.startswith("TORCH_INDEX="), "ARG TORCH_INDEX")
    from_at = index_of(lambda k, a: k == "FROM", "FROM")
    deps_at, dependencies = dependency_install()
    assert from_at < arg_at < deps_at, "declare the ARG inside the stage, before the install that uses it"
    assert steps[arg_at][1] == "TORCH_INDEX=https://download.pytorch.org/whl/cpu"
    assert re.search(r'--extra-index-url "?\$\{?TORCH_INDEX\}?"?(\s|$)', dependencies)
    # No index is hard-coded in an instruction (a comment may name one).
    assert not any("download.pytorch.org" in a for k, a in steps if k == "RUN")
    # CPU-only: the +cpu local version exists only on the CPU index, and the comment says so.
    assert "torch==2.13.0+cpu" in (ROOT / "constraints.txt").read_text().splitlines()
    comment = DOCKERFILE[: DOCKERFILE.index("ARG TORCH_INDEX")]
    assert "torch==2.13.0+cpu" in comment and "only on the PyTorch" in comment


def test_base_image_names_a_debian_release():
    base = instruction("FROM")
    assert re.fullmatch(r"python:3\.11-slim-(bookworm|trixie)(@sha256:[0-9a-f]{64})?", base), base
    assert "requires-python" in PYPROJECT["project"] and "3.11" in PYPROJECT["project"]["requires-python"]


def test_dependency_list_is_the_runtime_dependencies(tmp_path):
    """Runs the Dockerfile's own inline command (no engine here) on the repository's pyproject.toml."""
    _, dependencies = dependency_install()
    generate = dependencies.split("&&")[0].strip()
    assert generate.startswith("python -c ") and generate.endswith("> requirements.txt"), generate
    context = tmp_path / "app"
    context.mkdir()
    shutil.copy(ROOT / "pyproject.toml", context)
    shutil.copy(ROOT / "constraints.txt", context)
    shim = tmp_path / "bin"
    shim.mkdir()
    (shim / "python").symlink_to(sys.executable)
    env = {**os.environ, "PATH": f"{shim}{os.pathsep}{os.environ.get('PATH', '')}"}
    # /bin/sh as the image's RUN uses it (Debian's dash), so its quoting rules apply.
    subprocess.run(["/bin/sh", "-c", generate], cwd=context, env=env, check=True, timeout=30)
    listed = (context / "requirements.txt").read_text().splitlines()
    names = [requirement_name(line) for line in listed]
    assert listed[0] == "torch==2.13.0"
    for runtime in ("torch", "diffusers", "tokenizers", "safetensors", "fastapi", "uvicorn", "jinja2", "pydantic-settings"):
        assert runtime in names
    assert listed == PYPROJECT["project"]["dependencies"]
    dev = {requirement_name(d) for d in PYPROJECT["project"]["optional-dependencies"]["dev"]}
    assert dev and not dev & set(names), dev & set(names)
    assert all(line and not line.startswith("#") for line in listed)
    # pip reads the list, and it agrees with the constraints: here, with no index, against what `make install`
    # installed (torch 2.13.0+cpu satisfies torch==2.13.0).
    resolve = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--dry-run",
        "--no-index",
        "--disable-pip-version-check",
        "-q",
        "-c",
        "constraints.txt",
        "-r",
        "requirements.txt",
    ]
    result = subprocess.run(resolve, cwd=context, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, shlex.join(resolve) + "\n" + result.stdout + result.stderr


def test_image_lays_out_the_files_where_the_app_reads_them():
    """REPO_ROOT is the parent of the app package: in the image /app (WORKDIR, where `-e .` points)."""
    from app.settings import REPO_ROOT, Settings
    from app.why import page as why  # here, not at the top: the structural tests need no app import

    workdir = PurePosixPath(instruction("WORKDIR"))
    assert REPO_ROOT == ROOT and workdir == PurePosixPath("/app")
    placed = {}
    for _, sources, destination in copies():
        target = workdir / destination
        for source in sources:  # a folder's contents go to the target; a file goes into a target ending in /
            file_into = (ROOT / source).is_file() and destination.endswith("/")
            placed[source.rstrip("/")] = target / PurePosixPath(source).name if file_into else target
    assert placed["app"] == workdir / "app", "python -m app and the editable install need /app/app"
    read_at_runtime = [
        REPO_ROOT / "static",
        REPO_ROOT / "templates",
        Settings.model_fields["checkpoint_dir"].default,
        why.DATA_CSV,
        why.AR_LOG_CSV,
    ]
    for path in read_at_runtime:
        relative = PurePosixPath(path.relative_to(REPO_ROOT).as_posix())
        covering = [s for s in placed if relative == PurePosixPath(s) or PurePosixPath(s) in relative.parents]
        assert covering, f"the image does not copy {relative}"
        copied = PurePosixPath(covering[0])
        assert placed[covering[0]] / relative.relative_to(copied) == workdir / relative


def ignored(path: str, patterns: list[str]) -> bool:
    parts = PurePosixPath(path).parts
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    for pattern in patterns:
        for candidate in candidates:
            if fnmatch.fnmatch(candidate, pattern) or (
                pattern.startswith("**/") and fnmatch.fnmatch(PurePosixPath(candidate).name, pattern[3:])
            ):
                return True
    return False


def test_dockerignore_keeps_what_the_image_copies_and_drops_local_state():
    patterns = [p for p in (ROOT / ".dockerignore").read_text().split() if not p.startswith("#")]
    for _, sources, _ in copies():
        for source in sources:
            assert not ignored(source, patterns), f"{source} is copied but .dockerignore excludes it"
    for local in ("*.egg-info", ".hypothesis", ".venv", ".git", "test-artifacts", "runs"):
        assert local in patterns
    assert ignored("diffusion_theater.egg-info", patterns) and ignored("app/__pycache__", patterns)


@pytest.mark.slow
def test_start_command_serves_healthz_and_healthcheck_passes(tmp_path):
    """The HEALTHCHECK finds a server started with --port (not THEATER_PORT, not 8000) and never asks a proxy: with
    http_proxy at a dead address, as Docker's client proxy settings put one in every container, it stays healthy."""
    command = json.loads(instruction("CMD"))
    assert command[:3] == ["python", "-m", "app"]
    assert "THEATER_HOST=0.0.0.0" in DOCKERFILE
    port = free_port()
    # The image listens on 0.0.0.0:8000; here loopback and a free port given as a flag, as `docker run IMAGE python
    # -m app --port N` would.
    env = {k: v for k, v in os.environ.items() if k != "THEATER_PORT"}
    env.update(THEATER_HOST="127.0.0.1", THEATER_PORT_FILE=str(tmp_path / "port"))
    server = subprocess.Popen(
        [sys.executable, *command[1:], "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    dead = "http://127.0.0.1:9"
    check_env = {**env, "http_proxy": dead, "HTTP_PROXY": dead, "no_proxy": "", "NO_PROXY": ""}
    healthcheck = json.loads(instruction("HEALTHCHECK").split("CMD", 1)[1].strip())
    healthcheck = [sys.executable, *healthcheck[1:]]
    try:
        deadline = time.time() + 60
        while True:
            try:
                with direct.open(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
                    assert response.status == 200
                    break
            except OSError:
                assert server.poll() is None, "the start command exited"
                assert time.time() < deadline, "no /healthz within 60 s"
                time.sleep(0.3)
        assert subprocess.run(healthcheck, cwd=ROOT, timeout=10, env=check_env).returncode == 0
    finally:
        server.terminate()
        server.wait(timeout=10)
    assert subprocess.run(healthcheck, cwd=ROOT, timeout=10, env=check_env).returncode == 1, "nothing serves: unhealthy"


def test_checkpoints_are_copied_before_the_code():
    """A code edit re-copies the code only: the checkpoints (about 30 MB) sit in a layer below it."""
    order = [destination.rstrip("/") for _, _, destination in copies()]
    assert order.index("./models/checkpoints") < order.index("./app")


def test_the_image_keeps_the_digits_the_pages_read_and_drops_the_text_evaluation_windows():
    patterns = [p for p in (ROOT / ".dockerignore").read_text().split() if not p.startswith("#")]
    assert ignored("models/evaluation_data/tinystories-valid-head.txt", patterns)
    assert not ignored("models/evaluation_data/mnist/t10k-images-idx3-ubyte.gz", patterns)  # /image/forward, the lab
