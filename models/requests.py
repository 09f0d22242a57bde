"""What every sampler's request shares, text or image: the strict request base, the seed's range and the one
error a sampler raises for a request it cannot serve. Torch-free, so the web layer imports it freely."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

SEED_MAX = 2**32 - 1


class SamplingError(ValueError):
    """A request the model cannot serve (too long for the context, infill for the left-to-right twin, ...).

    Bounds a request type states are pydantic's to enforce; this is for what only the model knows."""


# No docstring on the request classes: pydantic would put it in the published JSON schema.
class StrictRequest(BaseModel):
    # Frozen: a request is a value (its canonical JSON keys the replay cache); no unknown fields, finite numbers.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
