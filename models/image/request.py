"""What an image run may ask for: the torch-free request type the samplers take and `app.protocol` re-exports."""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import Field
from pydantic.json_schema import SkipJsonSchema

# Every demo's request shares one strictness and one seed range (defined with the text requests).
from models.text.decoding import SEED_MAX, StrictRequest

Sampler = Literal["ddim", "ddpm", "dpm"]  # dpm: DPM-Solver++
SAMPLERS: tuple[Sampler, ...] = get_args(Sampler)


class ImageRequest(StrictRequest):
    digit: int | None = Field(3, ge=0, le=9, description="class to draw, or null for unconditional")
    # measured best trade-off: class match 1.0, FD within 3x of the train floor
    guidance: float = Field(1.0, ge=0.0, le=10.0)
    sampler: Sampler = "ddim"
    steps: int = Field(50, ge=1)
    seed: int = Field(0, ge=0, le=SEED_MAX)
    # Images sampled at once (the CLIs' sample sheets and evaluation). Not part of the web protocol, where a run is
    # one image: left out of dumps (so of the cache key and URLs) and of the JSON schema, and `app.protocol`
    # refuses it from clients.
    batch: SkipJsonSchema[int] = Field(1, ge=1, exclude=True)


class ImageRaceRequest(StrictRequest):
    """The image race: one digit, painted pixel by pixel by the autoregressive model and denoised by the DDPM."""

    digit: int = Field(3, ge=0, le=9, description="the digit both models draw")
    steps: int = Field(50, ge=1, description="the DDPM lane's DDIM steps (one forward pass each)")
    guidance: float = Field(1.0, ge=0.0, le=10.0)
    seed: int = Field(0, ge=0, le=SEED_MAX)
    mistake: bool = Field(False, description="force the same wrong stroke early in both lanes")


class ImageSamplersRequest(StrictRequest):
    """Three samplers side by side on the same DDPM: one digit, seed and guidance, each lane its own step count."""

    digit: int | None = Field(3, ge=0, le=9, description="class to draw, or null for unconditional")
    guidance: float = Field(1.0, ge=0.0, le=10.0)
    seed: int = Field(0, ge=0, le=SEED_MAX)
    ddpm_steps: int = Field(1000, ge=1, description="the DDPM lane's steps (one forward pass each)")
    ddim_steps: int = Field(50, ge=1, description="the DDIM lane's steps")
    dpm_steps: int = Field(20, ge=1, description="the DPM-Solver++ lane's steps")
