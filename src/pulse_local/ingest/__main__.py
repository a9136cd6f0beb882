"""``python -m pulse_local.ingest``: serve the processor with uvicorn.

Listens on ``PULSE_HOST:PULSE_PROCESSOR_PORT`` (on Cloud Run: ``0.0.0.0:$PORT``).
"""

from __future__ import annotations

import os
import sys
from typing import Any

from pulse_local.config import Settings, load_options, load_settings
from pulse_local.errors import PulseError


def app() -> Any:
    """The app for the settings in the environment (uvicorn's factory for worker processes)."""
    from pulse_local.ingest.app import create_app

    return create_app(load_settings())


def serve(settings: Settings) -> None:
    """Run the processor in the foreground until SIGINT/SIGTERM, in
    ``PULSE_PROCESSOR_WORKERS`` processes (one event loop each)."""
    import uvicorn

    from pulse_local.backends import require_emulator_endpoints
    from pulse_local.ingest.app import create_app
    from pulse_local.ingest.options import ProcessorOptions

    require_emulator_endpoints(settings, "python -m pulse_local.ingest", pubsub=True)
    port = int(os.environ.get("PORT", settings.processor_port))  # Cloud Run injects PORT
    host = "0.0.0.0" if "PORT" in os.environ else settings.host
    workers = load_options(ProcessorOptions).workers
    from pulse_local.http_limits import HeaderTimeout, header_timeout

    header_timeout()  # a bad PULSE_HEADER_TIMEOUT fails here, named, not in each connection
    common: dict[str, Any] = {"host": host, "port": port, "log_level": "warning",
                              "access_log": False, "timeout_graceful_shutdown": 10,
                              "http": HeaderTimeout}
    if workers == 1:
        uvicorn.run(create_app(settings), **common)
    else:  # worker processes build the app from the environment, which holds the settings
        uvicorn.run("pulse_local.ingest.__main__:app", factory=True, workers=workers, **common)


def main() -> None:
    try:
        serve(load_settings())
    except PulseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
