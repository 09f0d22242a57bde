"""Resumable training state without pickle: optimizer tensors and RNG state in safetensors,
counters in JSON."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from models.checkpoints import read_json, save_weights, write_json


def save_state(
    folder: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    counters: dict,
    extra_modules: dict[str, torch.nn.Module] | None = None,
) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    save_weights(model, folder / "model.tmp")
    tensors: dict[str, torch.Tensor] = {"rng": generator.get_state()}
    state = optimizer.state_dict()
    for index, slots in state["state"].items():
        for slot, value in slots.items():
            tensors[f"opt.{index}.{slot}"] = torch.as_tensor(value).clone().contiguous()
    save_file(tensors, str(folder / "optim.tmp"))
    for name, module in (extra_modules or {}).items():
        save_weights(module, folder / f"{name}.tmp")
        (folder / f"{name}.tmp").replace(folder / f"{name}.safetensors")
    # Rename last so a crash mid-write leaves the previous state intact.
    (folder / "model.tmp").replace(folder / "model.safetensors")
    (folder / "optim.tmp").replace(folder / "optim.safetensors")
    write_json(folder / "state.json", counters)


def load_state(
    folder: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    extra_modules: dict[str, torch.nn.Module] | None = None,
) -> dict:
    from models.checkpoints import load_weights

    load_weights(model, folder / "model.safetensors")
    for name, module in (extra_modules or {}).items():
        load_weights(module, folder / f"{name}.safetensors")
    tensors = load_file(str(folder / "optim.safetensors"))
    generator.set_state(tensors.pop("rng"))
    state = optimizer.state_dict()
    slots: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        _, index, slot = key.split(".", 2)
        slots.setdefault(int(index), {})[slot] = value
    state["state"] = slots
    optimizer.load_state_dict(state)
    return read_json(folder / "state.json")


def has_state(folder: Path) -> bool:
    return (folder / "state.json").exists()
