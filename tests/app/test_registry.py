"""The demo registry is the one place a demo's kind is named, and each entry alone gives a demo all it has."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.demos.registry import DEMOS
from app.main import create_app
from app.settings import REPO_ROOT, Settings
from tests.app.live import Live, exchange, fake_backends, live_server, run
from tests.app.test_export_every_demo import SMALL

APP = REPO_ROOT / "app"
KINDS = "|".join(re.escape(kind) for kind in DEMOS)
# A kind's path as a string ("race/image"), or a comparison of a kind with one ("text", "race" alone are words
# many fields use, so only comparisons of a `kind` catch them).
PATH_KINDS = "|".join(re.escape(kind) for kind in DEMOS if "/" in kind)
NAMES_A_KIND = re.compile(rf"""["'](?:{PATH_KINDS})["']|\bkind\s*(?:==|!=|in)\s*[(\[]?["'](?:{KINDS})["']""")


@pytest.fixture(scope="module")
def live() -> Iterator[Live]:
    with live_server(backends=fake_backends()) as server:
        yield server


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    app = create_app(Settings(models="fake", prewarm=False), loader=lambda _s: fake_backends(), use_torch=False)
    with TestClient(app) as client:
        yield client


def python_files() -> list[Path]:
    return sorted(p for p in APP.rglob("*.py") if p != APP / "demos" / "registry.py")


def test_no_module_but_the_registry_names_a_kind() -> None:
    named = {
        f"{path.relative_to(REPO_ROOT)}:{number}: {line.strip()}"
        for path in python_files()
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if NAMES_A_KIND.search(line) and not line.lstrip().startswith("#")
    }
    assert not named, "\n".join(sorted(named))


def test_no_app_module_is_over_400_lines() -> None:
    long = {str(p.relative_to(REPO_ROOT)): n for p in python_files() if (n := len(p.read_text().splitlines())) > 400}
    assert not long


def test_the_engine_never_imports_templating_nor_the_fakes() -> None:
    for path in (APP / "engine").glob("*.py"):
        source = path.read_text()
        assert "app.web.templating" not in source and "app.render.notices" not in source, path
    for path in python_files():
        if path.name != "fakes.py":  # loaded only when asked for (THEATER_MODELS=fake), inside load_backends
            top = [line for line in path.read_text().splitlines() if line.startswith(("from ", "import "))]
            assert not any("app.backends.fakes" in line for line in top), path


@pytest.mark.parametrize("kind", list(DEMOS))
def test_an_entry_alone_serves_the_page_the_embed_the_fragment_the_socket_and_the_exports(
    client: TestClient, live: Live, kind: str
) -> None:
    demo = DEMOS[kind]
    page = client.get(f"/{kind}")
    assert page.status_code == 200 and f"<title>{demo.page.title} · Diffusion Theater</title>" in page.text
    assert f'href="/export/{kind}.gif?' in page.text and f'href="/export/{kind}.json?' in page.text
    embed = client.get(f"/embed/{kind}")
    assert embed.status_code == 200 and demo.page.heading in embed.text
    fragment = client.get(f"/{kind}/run")
    assert fragment.status_code == 200 and f'hx-ws:connect="{demo.socket_path}"' in fragment.text
    # a real socket (the test client's websocket can raise CancelledError as it closes)
    result = run(
        exchange(f"ws://127.0.0.1:{live.port}{demo.socket_path}?format=json", demo.request(**SMALL[kind]).model_dump_json())
    )
    assert result.types[-1] == "done" and "frame" in result.types
    assert client.get("/replay").text.count(demo.page.title) >= 1  # /replay knows what a trace of it is


# The floors of app/, bottom up (docs/architecture.md): a module imports only its own floor and those below.
FLOORS = [
    {"app.settings", "app.errors", "app.healthcheck"},
    {"app.web"},
    {"app.why"},
    {"app.render"},
    {"app.engine"},
    {"app.backends"},
    {"app.export"},
    {"app.demos"},
    {"app.routes"},
    {"app.main", "app.worker", "app.__main__"},
]


def floor_of(module: str) -> int:
    for rank, floor in enumerate(FLOORS):
        if any(module == name or module.startswith(name + ".") for name in floor):
            return rank
    raise AssertionError(f"{module} is on no floor: add its package to FLOORS and docs/architecture.md")


def module_imports() -> dict[str, set[str]]:
    """Each app module -> the app modules it imports at its top level (imports inside functions are lazy ones)."""
    modules = {".".join(p.relative_to(REPO_ROOT).with_suffix("").parts).removesuffix(".__init__"): p for p in APP.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets: set[str] = set()
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("app"):
                targets |= {
                    f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module for a in node.names
                }
            elif isinstance(node, ast.Import):
                targets |= {a.name for a in node.names if a.name.startswith("app")}
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def test_each_module_imports_only_its_floor_and_those_below() -> None:
    upward = sorted(
        f"{module} -> {target}"
        for module, targets in module_imports().items()
        for target in targets
        if floor_of(target) > floor_of(module)
    )
    assert not upward


def test_no_module_import_forms_a_cycle() -> None:
    graph = module_imports()
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            raise AssertionError(" -> ".join([*path[path.index(module) :], module]))
        if module in done:
            return
        for target in sorted(graph[module]):
            visit(target, [*path, module])
        done.add(module)

    for module in sorted(graph):
        visit(module, [])
