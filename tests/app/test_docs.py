"""docs/protocol.md's example client runs as written against a live server."""

from __future__ import annotations

import re
import subprocess
import sys

from app.settings import REPO_ROOT
from tests.app.live import live_server


def test_protocol_example_client_runs() -> None:
    doc = (REPO_ROOT / "docs" / "protocol.md").read_text()
    code = re.search(r"## Example client.*?```python\n(.*?)```", doc, re.S)
    assert code is not None
    with live_server() as live:
        source = code.group(1).replace("ws://127.0.0.1:8000", f"ws://127.0.0.1:{live.port}")
        result = subprocess.run([sys.executable, "-c", source], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert "step  16/16  blanks   0" in result.stdout and result.stdout.strip().splitlines()[-1].startswith("Once")


def test_protocol_race_example_runs() -> None:
    doc = (REPO_ROOT / "docs" / "protocol.md").read_text()
    first, race = re.findall(r"## Example client.*?```python\n(.*?)```.*?```python\n(.*?)```", doc, re.S)[0]
    imports = "\n".join(line for line in first.splitlines() if line.startswith("import "))
    with live_server() as live:
        source = (imports + "\n" + race).replace("ws://127.0.0.1:8000", f"ws://127.0.0.1:{live.port}")
        result = subprocess.run([sys.executable, "-c", source], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("pass  0/16") and "diffusion: 0/16" in lines[0]
    assert lines[-2].startswith("diffusion: 8 passes") and lines[-1].startswith("ar: 16 passes")
    assert "never read: ' He was sad.'" in lines[-1]
