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


def distillation_rates(batch: int, dt: float, generator: torch.Generator) -> torch.Tensor:
    """Mask rates for distillation: one step of size dt must fit below each, so t lies in [dt, 1]."""
    return dt + (1 - dt) * stratified_mask_rates(batch, generator, low=0.0)


def sdtt_targets(
    teacher: TextTransformer, noisy: torch.Tensor, t: torch.Tensor, dt: float, generator: torch.Generator
) -> torch.Tensor:
    """What the teacher makes of `noisy` (mask rate t) in two steps of dt / 2, as a distribution per position (B, T, V).

    Self-distillation through time (Deschenaux and Gulcehre, arXiv 2410.21035), for MDLM's linear schedule: the
    first half step reveals each blank with probability (dt / 2) / t, drawn from the teacher's prediction; a
    revealed position's target is that draw (one-hot), every other position's is the teacher's prediction read
    again with the revealed tokens in view. A student that matches this in one step of dt commits what the
    teacher would have in two, each blank seeing the others decided with it."""
    mask_id = teacher.config.mask_id
    blank = noisy == mask_id
    with torch.no_grad():
        first = teacher(noisy).float()
        first[..., mask_id] = float("-inf")
        probs = F.softmax(first, dim=-1)
        drawn = torch.multinomial(probs.reshape(-1, probs.shape[-1]), 1, generator=generator).reshape(noisy.shape)
        reveal = blank & (torch.rand(noisy.shape, generator=generator) < (dt / 2) / t[:, None])
        halfway = torch.where(reveal, drawn, noisy)
        second = teacher(halfway).float()
        second[..., mask_id] = float("-inf")
        targets = F.softmax(second, dim=-1)
        return torch.where(reveal[..., None], F.one_hot(drawn, targets.shape[-1]).float(), targets)


def sdtt_loss(
    student: TextTransformer, teacher: TextTransformer, ids: torch.Tensor, dt: float, generator: torch.Generator
) -> torch.Tensor:
    """KL(teacher's two half steps || student's one step) in nats, averaged over the blanks. ids (B, T)."""
    t = distillation_rates(ids.shape[0], dt, generator)
    blank = torch.rand(ids.shape, generator=generator) < t[:, None]
    noisy = torch.where(blank, student.config.mask_id, ids)
    targets = sdtt_targets(teacher, noisy, t, dt, generator)
    logits = student(noisy)
    logits = logits.masked_fill(F.one_hot(torch.tensor(student.config.mask_id), logits.shape[-1]).bool(), float("-inf"))
    log_student = F.log_softmax(logits, dim=-1)
    # KL = sum p (log p - log q); 0 log 0 = 0 for the one-hot targets
    kl = (targets * (torch.log(targets.clamp_min(1e-12)) - log_student.clamp_min(-1e4))).sum(-1)  # (B, T)
    return (kl * blank).sum() / blank.sum().clamp_min(1)
