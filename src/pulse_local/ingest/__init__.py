"""``typeform-processor``: Typeform webhooks -> Postgres (RLS) + raw archive + Pub/Sub events.

Run it with ``python -m pulse_local.ingest`` (uvicorn on ``settings.host:settings.processor_port``)
or build the ASGI app with :func:`create_app`.
"""

from __future__ import annotations

from pulse_local.ingest.app import create_app
from pulse_local.ingest.options import ProcessorOptions

__all__ = ["ProcessorOptions", "create_app"]
