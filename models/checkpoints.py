"""Checkpoint folders: `config.json` beside `model.safetensors`, plus a sha256 manifest.

No pickle is ever loaded: weights are safetensors, configs and training state are JSON.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

CHECKPOINT_ROOT = Path(__file__).resolve().parent / "checkpoints"
MANIFEST = "SHA256SUMS"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


def save_weights(module: torch.nn.Module, path: Path, half: bool = False) -> None:
    state = {}
    for name, tensor in module.state_dict().items():
        tensor = tensor.detach().contiguous().clone()
        if half and tensor.is_floating_point():
            tensor = tensor.half()
        state[name] = tensor
    # Tied weights share storage; safetensors refuses shared tensors, so each is cloned above.
    save_file(state, str(path))


def load_weights(module: torch.nn.Module, path: Path) -> None:
    """Strict load; fp16 files are cast to the module's dtype."""
    state = load_file(str(path))
    current = module.state_dict()
    cast = {k: v.to(current[k].dtype) if k in current else v for k, v in state.items()}
    module.load_state_dict(cast, strict=True)


def write_manifest(folder: Path) -> None:
    lines = [
        f"{sha256_of(p)}  {p.relative_to(folder).as_posix()}"
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.suffix in {".safetensors", ".json"}
    ]
    (folder / MANIFEST).write_text("\n".join(lines) + "\n")


def portable_summary(summary: dict) -> dict:
    """A training summary fit to publish: path arguments reduced to file names (no machine paths)."""
    clean = dict(summary)
    clean["args"] = {k: (Path(v).name if "/" in v else v) for k, v in summary.get("args", {}).items()}
    return clean


class ChecksumError(RuntimeError):
    pass


def read_manifest(folder: Path) -> dict[str, str]:
    """`folder`'s SHA256SUMS as {file: sha256} (`<sha256>  <file>` lines)."""
    entries: dict[str, str] = {}
    for line in (folder / MANIFEST).read_text().splitlines():
        if line.strip():
            expected, name = line.split(maxsplit=1)
            entries[name.strip()] = expected
    return entries


def verify_manifest(folder: Path) -> None:
    """Refuse to load a checkpoint whose files differ from the committed manifest."""
    manifest = folder / MANIFEST
    if not manifest.exists():
        raise ChecksumError(f"{folder} has no {MANIFEST}")
    for name, expected in read_manifest(folder).items():
        path = folder / name
        if not path.exists() or sha256_of(path) != expected:
            raise ChecksumError(f"{path} does not match its sha256 in {manifest}")
