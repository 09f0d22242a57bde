"""int8 dynamic quantisation of a text model, for evaluation: every `nn.Linear` of a copy of the network (attention,
MLP, the tied head) holds int8 weights and quantises its input per call; embeddings and norms stay in float.
`python -m models.text.evaluate --int8` measures what it costs in quality and buys in speed."""

from __future__ import annotations

import copy
import dataclasses

import torch
from torch import nn

from models.text.model import TextModel


def int8_model(model: TextModel) -> TextModel:
    """The same model with an int8 copy of its network (the original is untouched)."""
    network = torch.ao.quantization.quantize_dynamic(copy.deepcopy(model.network), {nn.Linear}, dtype=torch.qint8)
    return dataclasses.replace(model, network=network, name=f"{model.name} (int8)")
