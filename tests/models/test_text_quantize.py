"""int8 dynamic quantisation of a text model (`models.text.quantize`, what `evaluate --int8` measures)."""

from __future__ import annotations

import torch
from torch.ao.nn.quantized.dynamic import Linear as DynamicInt8Linear

from models.text.decoding import TextRequest
from models.text.model import untrained_text_model
from models.text.quantize import int8_model
from models.text.sample import sample_diffusion


def test_an_int8_copy_quantises_every_linear_and_leaves_the_original_alone() -> None:
    model = untrained_text_model(causal=False)
    quantised = int8_model(model)
    linears = [m for m in quantised.network.modules() if isinstance(m, DynamicInt8Linear)]
    assert len(linears) == 1 + 4 * model.network.config.depth  # the head, and qkv, out, up, down per block
    assert not any(isinstance(m, DynamicInt8Linear) for m in model.network.modules())
    assert quantised.name.endswith("(int8)") and quantised.tokenizer is model.tokenizer
    ids = torch.randint(2, model.network.config.vocab_size, (2, 24))
    with torch.inference_mode():
        exact, approximate = model.network(ids), quantised.network(ids)
    assert approximate.shape == exact.shape
    assert (approximate - exact).abs().max() < 0.1 * exact.abs().max()  # close, not equal: 8-bit weights
    frames = list(sample_diffusion(quantised, TextRequest(prompt="a", length=6, steps=3)))
    assert frames[-1].masked == 0  # and the sampler runs on it
