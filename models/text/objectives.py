"""The two training objectives, side by side so their one real difference is easy to see.

- Autoregressive: predict token i+1 from tokens <= i (causal attention), every position counts.
- Masked diffusion (MDLM, linear schedule alpha_t = 1 - t): blank each token with probability t,
  predict only the blanks, weight by 1/t. The expectation over t ~ U(0,1) is the continuous-time
  NELBO in nats per token, an upper bound on the negative log-likelihood.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from models.text.network import TextTransformer


def ar_loss(model: TextTransformer, ids: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy in nats per token. ids (B, T)."""
    logits = model(ids[:, :-1])  # (B, T-1, V)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1))


def stratified_mask_rates(batch: int, generator: torch.Generator, low: float = 1e-3) -> torch.Tensor:
    """One t per sequence, spread evenly over (low, 1] with a random offset (low-discrepancy draw):
    the same expectation as t ~ U(0,1) with much lower variance across a batch."""
    offset = torch.rand((), generator=generator)
    t = (torch.arange(batch) + offset) / batch
    return low + (1 - low) * t  # (B,)


def mdlm_loss(model: TextTransformer, ids: torch.Tensor, t: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """NELBO estimate in nats per token. ids (B, T); t (B,) mask rates."""
    blank = torch.rand(ids.shape, generator=generator) < t[:, None]  # (B, T)
    noisy = torch.where(blank, model.config.mask_id, ids)
    logits = model(noisy)  # (B, T, V)
    token_nll = F.cross_entropy(logits.transpose(1, 2), ids, reduction="none")  # (B, T)
    weighted = (token_nll * blank) / t[:, None]
    return weighted.sum() / ids.numel()
