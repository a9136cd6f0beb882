"""``python -m pulse_local.ingest``: serve the processor with uvicorn.

Listens on ``PULSE_HOST:PULSE_PROCESSOR_PORT`` (on Cloud Run: ``0.0.0.0:$PORT``).
"""

from __future__ import annotations

import os

from pulse_local.config import Settings, load_settings


def serve(settings: Settings) -> None:
    """Run the processor in the foreground until SIGINT/SIGTERM."""
    import uvicorn

    from pulse_local.ingest.app import create_app

    port = int(os.environ.get("PORT", settings.processor_port))  # Cloud Run injects PORT
    host = "0.0.0.0" if "PORT" in os.environ else settings.host
    uvicorn.run(create_app(settings), host=host, port=port, log_level="warning",
                access_log=False, timeout_graceful_shutdown=10)


def main() -> None:
    serve(load_settings())


if __name__ == "__main__":
    main()
