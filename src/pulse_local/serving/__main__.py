"""``python -m pulse_local.serving``: the serving API on ``PULSE_HOST:PULSE_SERVING_PORT``.

In a container (Cloud Run sets ``PORT``) it listens on ``0.0.0.0:$PORT`` instead, like the
processor; locally it binds ``PULSE_HOST`` (127.0.0.1 by default).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

from pulse_local.config import Settings, load_settings
from pulse_local.errors import PulseError


def bind_address(settings: Settings, environ: Mapping[str, str]) -> tuple[str, int]:
    """Where to listen: ``0.0.0.0:$PORT`` when the platform injects ``PORT`` (Cloud Run, the
    image), else ``PULSE_HOST:PULSE_SERVING_PORT``."""
    if environ.get("PORT"):
        try:
            return "0.0.0.0", int(environ["PORT"])
        except ValueError:
            raise PulseError(f"PORT={environ['PORT']!r} is not a port number") from None
    return settings.host, settings.serving_port


def serve(settings: Settings) -> None:
    """Run the API in the foreground until SIGINT/SIGTERM."""
    import uvicorn

    from pulse_local.backends import require_emulator_endpoints, serving_security, use_profile
    from pulse_local.serving.app import create_app

    require_emulator_endpoints(settings, "python -m pulse_local.serving", bigtable=True)
    use_profile(settings)
    from pulse_local.http_limits import HeaderTimeout, header_timeout

    host, port = bind_address(settings, os.environ)
    header_timeout()  # a bad PULSE_HEADER_TIMEOUT fails here, named
    uvicorn.run(create_app(settings, serving_security(settings)), host=host, port=port,
                log_level="warning", access_log=False, timeout_graceful_shutdown=5,
                http=HeaderTimeout)


def main() -> None:
    try:
        serve(load_settings())
    except PulseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
