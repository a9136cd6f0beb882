"""Readiness probes, one per service of the stack (`PROBES`, by service name): shared by `up`,
`status`, the pytest plugin and the compose healthchecks
(``python -m pulse_local.stack.probes <service>``).

Each probe returns None when the service answers and raises otherwise. A plain service is
probed with a real client call here; a service that reports its own state (CDC and the
streaming consumer through a heartbeat file, the deployments through Prefect's API) is probed
by the check its package defines, imported when the probe runs.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

from pulse_local.config import Settings, load_settings

_http: Any = None
_http_lock = threading.Lock()


def _client() -> Any:
    """One `httpx.Client` for every HTTP probe of this process: ``httpx.get`` builds a client
    (and its TLS context) per call, ~24 ms of CPU, and `up` probes every 50 ms while a service
    starts. No keep-alive: an idle connection held open would make the service's graceful
    shutdown wait for it."""
    global _http
    with _http_lock:
        if _http is None:
            import httpx  # here, not at import: `pulse-local down` and `status` start faster

            _http = httpx.Client(limits=httpx.Limits(max_keepalive_connections=0))
        return _http


def postgres(settings: Settings, timeout: float = 2.0) -> None:
    """`select 1` as the owner role."""
    import psycopg

    with psycopg.connect(settings.admin_dsn("postgres"), connect_timeout=max(1, int(timeout))) as conn:
        conn.execute("select 1").fetchone()


def pubsub(settings: Settings, timeout: float = 2.0) -> None:
    """`ListTopics` on the stack's emulator (always the stack's own address, whatever
    PUBSUB_EMULATOR_HOST says)."""
    from pulse_local.resources import pubsub_ready

    pubsub_ready(f"{settings.host}:{settings.pubsub_port}", settings.project, timeout)


def bigtable(settings: Settings, timeout: float = 2.0) -> None:
    """`ListTables` on the stack's emulator."""
    from pulse_local.resources import bigtable_ready

    bigtable_ready(f"{settings.host}:{settings.bigtable_port}", settings.project,
                   settings.bigtable_instance, timeout)


def prefect(settings: Settings, timeout: float = 2.0) -> None:
    """Prefect's `/api/health`."""
    url = f"http://{settings.host}:{settings.prefect_port}/api/health"
    response = _client().get(url, timeout=timeout)
    response.raise_for_status()
    if response.json() is not True:
        raise RuntimeError(f"{url} answered {response.text!r}")


def http_health(url: str, timeout: float = 2.0) -> None:
    """GET `url`; 2xx means ready."""
    _client().get(url, timeout=timeout).raise_for_status()


def processor(settings: Settings, timeout: float = 2.0) -> None:
    """The webhook processor's `/healthz` (a real query on its database and a GetTopic on
    Pub/Sub: unhealthy while either is down)."""
    http_health(f"http://{settings.host}:{settings.processor_port}/healthz", timeout)


def cdc(settings: Settings, timeout: float = 2.0) -> None:
    """The CDC service streams: a fresh heartbeat from a live process (`pulse_local.cdc.cdc_ready`)."""
    from pulse_local.cdc import cdc_ready

    cdc_ready(settings)


def streaming(settings: Settings, timeout: float = 2.0) -> None:
    """The consumer has a live process with open streams (its heartbeat file,
    `pulse_local.streaming.status.consumer_ready`)."""
    from pulse_local.streaming.status import consumer_ready

    consumer_ready(settings)


def serving(settings: Settings, timeout: float = 2.0) -> None:
    """The serving API's ``GET /healthz`` answers 200."""
    import httpx

    from pulse_local.errors import ServiceUnavailable

    url = f"http://{settings.host}:{settings.serving_port}/healthz"
    try:
        response = _client().get(url, timeout=timeout)
    except httpx.TransportError as exc:
        raise ServiceUnavailable(f"serving API at {url} does not answer ({exc}): start it with "
                                 "`python -m pulse_local.serving`") from None
    if response.status_code != 200:
        raise ServiceUnavailable(f"serving API unhealthy: {response.status_code} {response.text}")


def deployments(settings: Settings, timeout: float = 2.0) -> None:
    """Every deployment of this profile is registered with Prefect
    (`pulse_local.orchestration.deployments_ready`)."""
    from pulse_local.orchestration import deployments_ready

    deployments_ready(settings, timeout)


#: The probe of every service, by service name (`stack.services.native_services` uses these).
PROBES = {"postgres": postgres, "pubsub": pubsub, "bigtable": bigtable, "prefect": prefect,
          "processor": processor, "cdc": cdc, "streaming": streaming, "serving": serving,
          "deployments": deployments}


def main(argv: list[str]) -> int:
    """Probe one service by name; exit 0 when it answers (for compose healthchecks)."""
    if len(argv) != 1 or argv[0] not in PROBES:
        print(f"usage: python -m pulse_local.stack.probes {{{'|'.join(PROBES)}}}", file=sys.stderr)
        return 2
    try:
        PROBES[argv[0]](load_settings())
    except Exception as exc:  # noqa: BLE001 - a probe failure is the answer, printed for the healthcheck log
        print(f"{argv[0]} not ready: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
