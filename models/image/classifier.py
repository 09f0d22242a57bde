"""A small CNN digit classifier: measures the DDPM (class match, Frechet distance in its feature
space) and powers the "when is the digit decided" meter on predicted x0."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class ClassifierConfig:
    width: int = 32
    features: int = 128
    dropout: float = 0.3
    # Convolutions at 28x28 before the first pooling. The meter's classifier runs at every step of every image
    # run and keeps one: the second full-size convolution is 41% of its time (measured) for little accuracy.
    full_size_convs: int = 2

    def to_dict(self) -> dict:
        return asdict(self)


class DigitClassifier(nn.Module):
    def __init__(self, config: ClassifierConfig) -> None:
        super().__init__()
        self.config = config
        w = config.width
        if config.full_size_convs < 1:
            raise ValueError("a digit classifier needs at least one full-size convolution")
        full_size = [
            layer
            for index in range(config.full_size_convs)
            for layer in (nn.Conv2d(1 if index == 0 else w, w, 3, padding=1), nn.BatchNorm2d(w), nn.ReLU())
        ]
        self.convs = nn.Sequential(
            *full_size,
            nn.MaxPool2d(2),  # 14x14
            nn.Conv2d(w, 2 * w, 3, padding=1),
            nn.BatchNorm2d(2 * w),
            nn.ReLU(),
            nn.MaxPool2d(2),  # 7x7
            nn.Conv2d(2 * w, 4 * w, 3, padding=1),
            nn.BatchNorm2d(4 * w),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
        )
        self.feature = nn.Linear(4 * w, config.features)
        self.drop = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.features, 10)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """x (N, 1, 28, 28) in [-1, 1] -> (N, features)."""
        return F.relu(self.feature(self.convs(x).flatten(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.drop(self.features(x)))

    @torch.inference_mode()
    def probabilities(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self(x), dim=-1)
