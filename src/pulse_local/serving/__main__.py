"""``python -m pulse_local.serving``: the serving API on ``PULSE_HOST:PULSE_SERVING_PORT``."""

from __future__ import annotations

from pulse_local.config import Settings, load_settings


def serve(settings: Settings) -> None:
    """Run the API in the foreground until SIGINT/SIGTERM."""
    import uvicorn

    from pulse_local.backends import use_profile
    from pulse_local.serving.app import create_app

    use_profile(settings)
    uvicorn.run(create_app(settings), host=settings.host, port=settings.serving_port,
                log_level="warning", access_log=False, timeout_graceful_shutdown=5)


def main() -> None:
    serve(load_settings())


if __name__ == "__main__":
    main()
