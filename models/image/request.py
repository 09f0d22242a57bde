"""What an image run may ask for: the torch-free request type the samplers take and `app.demos.protocol` re-exports."""

from __future__ import annotations

from typing import Any, Literal, get_args

from pydantic import Field, SerializerFunctionWrapHandler, model_serializer
from pydantic.json_schema import SkipJsonSchema

from models.image.data import HELD_OUT_DIGITS
from models.image.masks import MASK_CHARS, MaskError, decode_mask

# Every demo's request shares one strictness and one seed range (defined with the text requests).
from models.requests import SEED_MAX, StrictRequest

GUIDANCE_MAX = 10.0  # classifier-free guidance scale: past this the digits burn out

Sampler = Literal["ddim", "ddpm", "dpm"]  # dpm: DPM-Solver++
SAMPLERS: tuple[Sampler, ...] = get_args(Sampler)

# When the image race's forced stroke enters the DDPM: after this share of its steps (`race_frames.mistake_step`).
# The PixelCNN's stroke stays at its rows whatever the timing (its raster reaches them about a quarter of the way).
# With DDIM's cosine schedule the state then keeps sqrt(alpha_bar) of the clean image: early 0.31 (t near 800: a
# faint hint under the noise), middle 0.70 (t near 500: as loud as the noise), late 0.95 (t near 200: nearly final).
MistakeTiming = Literal["early", "middle", "late"]
MISTAKE_TIMINGS: dict[MistakeTiming, float] = {"early": 0.2, "middle": 0.5, "late": 0.8}
# The default is "middle". The PixelCNN meets the stroke about a quarter of the way through its passes, at full ink;
# the DDPM at "early" (a fifth of its steps) gets it under the noise, a third as strong: a hint, not a mistake, and
# the race's default before this knob (measured: it still ends as the digit asked for in 99 of 100, 41% of the
# stroke's ink left). "middle" is the earliest timing where the stroke is as strong as the noise and costs the DDPM
# something (81 of 100, 84% of the ink left), so the default run neither flatters diffusion nor rules recovery out;
# "late" brings it nearly final (80 of 100, 96% left). docs/image-race-recovery.json has the counts and intervals.
DEFAULT_MISTAKE_TIMING: MistakeTiming = "middle"


class ImageRequest(StrictRequest):
    digit: int | None = Field(3, ge=0, le=9, description="class to draw, or null for unconditional")
    # measured best trade-off: class match 1.0, FD within 3x of the train floor
    guidance: float = Field(1.0, ge=0.0, le=GUIDANCE_MAX)
    sampler: Sampler = "ddim"
    steps: int = Field(50, ge=1)
    seed: int = Field(0, ge=0, le=SEED_MAX)
    # Images sampled at once (the CLIs' sample sheets and evaluation). Not part of the web protocol, where a run is
    # one image: left out of dumps (so of the cache key and URLs) and of the JSON schema, and `app.demos.protocol`
    # refuses it from clients.
    batch: SkipJsonSchema[int] = Field(1, ge=1, exclude=True)
    # The image lab: start from a real held-out digit (MNIST t10k no. `source`) instead of noise, either noised to
    # `start_t` and denoised from there, or with the pixels `mask` marks filled (RePaint; masks.py has the form).
    source: int | None = Field(None, ge=0, le=HELD_OUT_DIGITS - 1, description="held-out test digit to start from")
    start_t: int | None = Field(None, ge=1, le=999, description="with source: noise it to this timestep, denoise")
    mask: str | None = Field(None, max_length=MASK_CHARS, description="with source: the pixels to fill (RePaint)")

    @model_serializer(mode="wrap")
    def _omit_unused_lab_fields(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # A run from noise dumps as it did before the lab existed: the same cache keys, URLs and traces.
        data = handler(self)
        for name in LAB_FIELDS:
            if data.get(name, 0) is None:
                del data[name]
        return data


LAB_FIELDS = ("source", "start_t", "mask")


def lab_problem(request: ImageRequest) -> tuple[str, str] | None:
    """(field, message) when the lab fields do not make one run, else None. Kept out of validation so a page's
    query string can drop just the offending field (as with the other limits)."""
    if request.start_t is not None and request.source is None:
        return "start_t", "start_t needs a source digit to noise: set source (0-9999) or leave start_t out"
    if request.mask is None:
        return None
    if request.source is None:
        return "mask", "mask needs a source digit whose other pixels it keeps: set source (0-9999) or leave mask out"
    if request.start_t is not None:
        return "mask", "mask and start_t cannot be combined: inpainting runs the whole schedule (leave start_t out)"
    try:
        decode_mask(request.mask)
    except MaskError as error:
        return "mask", str(error)
    return None


class ImageRaceRequest(StrictRequest):
    """The image race: one digit, painted pixel by pixel by the autoregressive model and denoised by the DDPM."""

    digit: int = Field(3, ge=0, le=9, description="the digit both models draw")
    steps: int = Field(50, ge=1, description="the DDPM lane's DDIM steps (one forward pass each)")
    guidance: float = Field(1.0, ge=0.0, le=GUIDANCE_MAX)
    seed: int = Field(0, ge=0, le=SEED_MAX)
    mistake: bool = Field(False, description="force the same wrong stroke early in both lanes")
    mistake_at: MistakeTiming = Field(
        DEFAULT_MISTAKE_TIMING,
        description="with mistake: when the stroke enters the DDPM (early, middle, late: after 20%, 50%, 80% of its "
        "steps); the PixelCNN's stroke stays at its rows",
    )


class ImageSamplersRequest(StrictRequest):
    """Three samplers side by side on the same DDPM: one digit, seed and guidance, each lane its own step count."""

    digit: int | None = Field(3, ge=0, le=9, description="class to draw, or null for unconditional")
    guidance: float = Field(1.0, ge=0.0, le=GUIDANCE_MAX)
    seed: int = Field(0, ge=0, le=SEED_MAX)
    ddpm_steps: int = Field(1000, ge=1, description="the DDPM lane's steps (one forward pass each)")
    ddim_steps: int = Field(50, ge=1, description="the DDIM lane's steps")
    dpm_steps: int = Field(20, ge=1, description="the DPM-Solver++ lane's steps")
