"""One transformer for both text models: `causal=False` is the masked-diffusion denoiser,
`causal=True` is its autoregressive twin. Everything else (width, depth, tokenizer, RoPE) is shared.

Parts first (norm, rotary embedding, attention, MLP, block), then the whole.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class TextModelConfig:
    vocab_size: int = 2048
    context: int = 256
    width: int = 256
    depth: int = 6
    heads: int = 4
    mlp_ratio: int = 4
    dropout: float = 0.1
    causal: bool = False
    mask_id: int = 1  # the [MASK] token; the diffusion model reads it as "blank"
    eos_id: int = 0
    # Dream / DiffuLLaMA's shift (diffusion only): position j's logits come from the hidden state at j - 1 (position
    # 0 keeps its own), as an autoregressive model's do, so initialising from the twin keeps its next-token head.
    shift: bool = False

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> TextModelConfig:
        """Strict: a checkpoint's config must name every field, so nothing is rebuilt from defaults."""
        expected = {f.name for f in fields(cls)}
        data = {**ADDED_LATER, **data}  # fields added after the first checkpoints: absent means their old behaviour
        if set(data) != expected:
            raise ValueError(
                f"config fields differ: missing {sorted(expected - set(data))}, unknown {sorted(set(data) - expected)}"
            )
        return cls(**data)


ADDED_LATER = {"shift": False}


class RMSNorm(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.rms_norm(x, (x.shape[-1],), self.weight, eps=1e-6)


def rotary_tables(context: int, head_dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    # Relative positions: with learned absolute ones the bidirectional model sits on a unigram plateau.
    inv_freq = 1.0 / (10000 ** (torch.arange(0, head_dim, 2).float() / head_dim))
    angles = torch.outer(torch.arange(context).float(), inv_freq)  # (T, D/2)
    return angles.cos(), angles.sin()


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Each (even, odd) pair (x1, x2) of the last dim becomes (x1 cos - x2 sin, x1 sin + x2 cos); cos and sin
    broadcast against the pairs (..., D/2). As one complex product (x1 + i x2)(cos + i sin): one kernel instead
    of eight, and the same numbers bit for bit (the product is those multiplications, a subtraction, an addition)."""
    pairs = torch.view_as_complex(x.unflatten(-1, (-1, 2)))  # needs float x with a contiguous last dim
    return torch.view_as_real(pairs * torch.complex(cos, sin)).flatten(-2)


class KVCache:
    """Keys and values of the positions already read, per layer: lets the causal twin read each token once.

    Only for `causal=True` (a bidirectional model's keys change whenever a blank is filled)."""

    def __init__(self, depth: int) -> None:
        self.keys: list[torch.Tensor | None] = [None] * depth
        self.values: list[torch.Tensor | None] = [None] * depth

    def cached(self, layer: int) -> int:
        keys = self.keys[layer]
        return 0 if keys is None else keys.shape[2]

    @property
    def length(self) -> int:
        """Positions cached so far (by the last layer: complete once a forward pass has finished)."""
        return self.cached(len(self.keys) - 1)

    def extend(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Append this call's (B, H, T, D) keys and values; return everything cached for the layer."""
        past_k, past_v = self.keys[layer], self.values[layer]
        if past_k is not None and past_v is not None:
            k, v = torch.cat((past_k, k), dim=2), torch.cat((past_v, v), dim=2)
        self.keys[layer], self.values[layer] = k, v
        return k, v


class Attention(nn.Module):
    def __init__(self, config: TextModelConfig) -> None:
        super().__init__()
        self.heads = config.heads
        self.qkv = nn.Linear(config.width, 3 * config.width, bias=False)
        self.out = nn.Linear(config.width, config.width, bias=False)
        self.dropout = config.dropout
        self.causal = config.causal

    def forward(
        self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, cache: KVCache | None = None, layer: int = 0
    ) -> torch.Tensor:
        B, T, C = x.shape
        qkv = self.qkv(x).view(B, T, 3, self.heads, C // self.heads)
        # queries and keys rotated together, then (B, H, T, D) each
        q, k = apply_rotary(qkv[:, :, :2], cos[:, None, None], sin[:, None, None]).permute(2, 0, 3, 1, 4)
        v = qkv[:, :, 2].transpose(1, 2)
        past = cache.cached(layer) if cache is not None else 0
        if cache is not None:
            k, v = cache.extend(layer, k, v)  # (B, H, past + T, D)
        mask = None
        causal = self.causal
        if causal and past and T > 1:  # new queries see all the past and the new keys up to themselves
            mask = torch.ones(T, past + T, dtype=torch.bool, device=x.device).tril(diagonal=past)
            causal = False
        elif past:  # one new query: it may read every cached key
            causal = False
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, is_causal=causal, dropout_p=self.dropout if self.training else 0.0
        )
        return self.out(y.transpose(1, 2).reshape(B, T, C))


class MLP(nn.Module):
    def __init__(self, config: TextModelConfig) -> None:
        super().__init__()
        self.up = nn.Linear(config.width, config.mlp_ratio * config.width, bias=False)
        self.down = nn.Linear(config.mlp_ratio * config.width, config.width, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(F.gelu(self.up(x)))


class Block(nn.Module):
    def __init__(self, config: TextModelConfig) -> None:
        super().__init__()
        self.norm1, self.norm2 = RMSNorm(config.width), RMSNorm(config.width)
        self.attention, self.mlp = Attention(config), MLP(config)
        self.drop = nn.Dropout(config.dropout)

    def forward(
        self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, cache: KVCache | None = None, layer: int = 0
    ) -> torch.Tensor:
        x = x + self.drop(self.attention(self.norm1(x), cos, sin, cache, layer))
        return x + self.drop(self.mlp(self.norm2(x)))


class TextTransformer(nn.Module):
    rope_cos: torch.Tensor  # buffers, registered in __init__
    rope_sin: torch.Tensor

    def __init__(self, config: TextModelConfig) -> None:
        super().__init__()
        if config.shift and config.causal:
            raise ValueError("shift is for the diffusion model: the causal twin's logits already predict the next position")
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.width)
        self.drop = nn.Dropout(config.dropout)
        blocks = [Block(config) for _ in range(config.depth)]
        self.blocks = nn.ModuleList(blocks)
        self.norm = RMSNorm(config.width)
        self.head = nn.Linear(config.width, config.vocab_size, bias=False)
        self.head.weight = self.embed.weight  # tied: fewer parameters for a small data set
        cos, sin = rotary_tables(config.context, config.width // config.heads)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        self.apply(self._init)
        for block in blocks:  # scaled residual init (GPT-2)
            for proj in (block.attention.out, block.mlp.down):
                nn.init.normal_(proj.weight, std=0.02 / math.sqrt(2 * config.depth))

    @staticmethod
    def _init(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)

    def forward(self, ids: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        """ids (B, T) -> logits (B, T, V). With `cache` (causal model only), `ids` are the positions after
        those already cached: they are read once, appended to the cache, and only their logits returned."""
        return self.head(self.features(ids, cache))

    def features(self, ids: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        """ids (B, T) -> the normed last hidden states (B, T, C) that `head` turns into logits: a sampler that
        needs the logits of a few positions only (the blanks) applies `head` to those rows and skips the rest."""
        if cache is not None and not self.config.causal:
            raise ValueError("a KV cache needs the causal model: bidirectional keys change with every step")
        start = cache.length if cache is not None else 0
        end = start + ids.shape[1]
        if end > self.config.context:
            raise ValueError(f"sequence of {end} tokens exceeds the model context of {self.config.context}")
        cos, sin = self.rope_cos[start:end], self.rope_sin[start:end]
        x = self.drop(self.embed(ids))
        for layer, block in enumerate(self.blocks):
            x = block(x, cos, sin, cache, layer)
        x = self.norm(x)
        if self.config.shift:  # the state at j - 1 predicts position j (Dream's logits shift, on the features)
            x = torch.cat([x[:, :1], x[:, :-1]], dim=1)
        return x

    def new_cache(self) -> KVCache:
        return KVCache(self.config.depth)

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters())
