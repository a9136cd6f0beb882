"""Knobs of the webhook processor (environment ``PULSE_PROCESSOR_<NAME>``).

Kept apart from the global `Settings` so the processor can be tuned without touching them.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ProcessorOptions(BaseSettings):
    """Limits, pool sizes and archive locations of ``typeform-processor``."""

    model_config = SettingsConfigDict(env_prefix="PULSE_PROCESSOR_", extra="ignore")

    workers: int = Field(1, ge=1, le=32, description="Server processes (uvicorn workers).")
    max_body_bytes: int = Field(1_000_000, ge=1024, description="Larger bodies get 413.")
    body_timeout: float = Field(
        10.0, gt=0, le=300,
        description="Seconds a client may take to send its whole body; a slower one gets 408 "
        "and its connection is closed (stalled clients hold no connection for long).",
    )
    pool_min_size: int = Field(2, ge=0)
    pool_max_size: int = Field(16, ge=1)
    pool_timeout: float = Field(
        3.0, gt=0, description="Seconds to wait for a database connection before answering 503."
    )
    connect_timeout: int = Field(3, ge=1, description="libpq connect_timeout (seconds).")
    retry_after_seconds: int = Field(30, ge=1, description="Retry-After of 503 answers.")
    cache_seconds: float = Field(
        30.0, ge=0, description="How long tenant secrets and form definitions are cached."
    )
    archive_linger: float = Field(
        0.002, ge=0, le=0.1,
        description="Seconds a busy processor waits before an archive append, so that "
        "concurrent requests share the call (an idle one does not wait).",
    )
    publish_linger: float = Field(
        0.0, ge=0, le=0.1,
        description="The same before an event publish. None by default: a Publish on the event "
        "loop is cheap enough that waiting cost more than it saved (docs/source.md).",
    )
    publish_timeout: float = Field(
        5.0, gt=0, le=60,
        description="Seconds an event publish may take (retries included) before the webhook "
        "gets 503 naming the cause; also bounds the Pub/Sub check of /healthz.",
    )
    archive_prefix: str = Field("typeform/webhooks", description="Verified deliveries.")
    pending_prefix: str = Field(
        "typeform/pending",
        description="Verified deliveries received while the database was down, applied by "
        "`pulse-local replay --pending`.",
    )
