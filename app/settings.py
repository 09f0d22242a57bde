"""Every knob of the web layer, read once from the environment (prefix `THEATER_`).

Example: `THEATER_PORT=9000 THEATER_ALLOWED_ORIGINS=https://slides.example.org python -m app`.
Lists accept JSON (`["a","b"]`) or a comma-separated string.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from models.text.decoding import EDIT_WINDOW_MAX, EDIT_WORD_CHARS_MAX
from models.text.live_request import SECONDS_MAX, TEXT_BYTES_MAX

REPO_ROOT = Path(__file__).resolve().parent.parent
CORES = os.cpu_count() or 1


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="THEATER_", extra="ignore")

    # Serving
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    graceful_shutdown_seconds: float = Field(3.0, gt=0, description="uvicorn timeout_graceful_shutdown")

    # Models: "checkpoints" loads models/checkpoints/* (untrained fallback, flagged loudly on the pages);
    # "fake" runs tiny deterministic stand-ins (tests, benchmarks of the web layer alone).
    models: Literal["checkpoints", "fake"] = "checkpoints"
    checkpoint_dir: Path = REPO_ROOT / "models" / "checkpoints"
    fake_step_ms: float = Field(10.0, ge=0, description="sleep per step of the fake samplers")

    # Request limits (each one tested at its edge)
    max_prompt_chars: int = Field(400, ge=1)
    max_length: int = Field(192, ge=1, description="tokens to generate; with the prompt, must also fit the model context (256)")
    max_text_steps: int = Field(256, ge=1)
    max_edit_word_chars: int = Field(
        EDIT_WORD_CHARS_MAX, ge=1, le=EDIT_WORD_CHARS_MAX, description="a rework's new word (or short phrase)"
    )
    max_edit_window: int = Field(32, ge=1, le=EDIT_WINDOW_MAX, description="a rework's words each side of the new word")
    max_image_steps: int = Field(1000, ge=1)
    max_train_seconds: int = Field(
        180, ge=1, le=SECONDS_MAX, description="a /train run's wall-clock budget: it holds one worker's core that long"
    )
    max_train_text_bytes: int = Field(
        3000, ge=1, le=TEXT_BYTES_MAX, description="a pasted /train text (UTF-8): it travels in the URL and the socket message"
    )
    max_message_bytes: int = Field(4096, ge=256, description="largest websocket message a client may send")
    max_messages_per_second: int = Field(5, ge=1, description="messages a client may send per connection per second")
    max_connections_per_client: int = Field(500, ge=1, description="open sockets per client address (NAT: keep high)")
    idle_seconds: float = Field(30.0, gt=0, description="time a client has to send its request")

    # Security
    allowed_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="browser origins besides our own that may open websockets"
    )
    frame_ancestors: str = Field("*", description="CSP frame-ancestors: who may embed the pages")
    stats_reset_from_anywhere: bool = Field(
        False, description="let any client clear /stats samples with ?reset=1 (default: loopback clients only)"
    )

    # Engine
    max_running: int = Field(CORES, ge=1, description="jobs computing at once (one worker thread each)")
    max_wait_seconds: float = Field(
        120.0, ge=0, description="admit a job only if its estimated wait for a slot is at most this; else 'busy'"
    )
    max_queue: int = Field(10_000, ge=0, description="hard cap on jobs waiting for a slot (memory), whatever the wait")
    cache_bytes: int = Field(256 * 1024 * 1024, ge=0, description="finished trajectories kept for replay")
    torch_threads: int = Field(0, ge=0, description="torch intra-op threads per job; 0 = cores // max_running")
    prewarm: bool = Field(True, description="compute each demo's default run into the replay cache at startup")

    # Scale-out (docs/scale-out.md): with a Redis URL, web replicas (`python -m app`) only stream and workers
    # (`python -m app.worker`, `max_running` jobs each) sample; without one, the engine runs in process.
    redis_url: str = Field(
        "", description="redis://host:6379/0: run the engine on Redis (jobs stream + per-run frame streams); empty: in process"
    )
    redis_ttl_seconds: int = Field(
        3600, ge=1, description="a finished run stays in Redis this long for replay (and while its memory policy allows)"
    )
    redis_claim_seconds: float = Field(
        15.0, gt=0, description="a worker silent this long loses its running job to another (XAUTOCLAIM min-idle)"
    )
    redis_timeout_seconds: float = Field(2.0, gt=0, description="connect and read timeout of every Redis call")
    redis_prefix: str = Field("theater", min_length=1, description="namespace of the Redis keys (deployments may share one)")

    @field_validator("allowed_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                import json

                return json.loads(text)
            return [part.strip().rstrip("/") for part in text.split(",") if part.strip()]
        return value

    @property
    def ws_max_size(self) -> int:
        """uvicorn's ws_max_size. Messages up to this size reach the app, so one a little over
        `max_message_bytes` gets a readable error (and 1009); anything larger is cut by the websocket
        layer (1009, no message) before it is buffered. 64 KiB, or 4x max_message_bytes if that is larger."""
        return max(65536, 4 * self.max_message_bytes)

    @property
    def effective_torch_threads(self) -> int:
        return self.torch_threads or max(1, CORES // self.max_running)


@lru_cache
def get_settings() -> Settings:
    return Settings()
