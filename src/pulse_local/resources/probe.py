"""Readiness probes: one real, cheap API call per emulator, with a short deadline.

A TCP connect is not enough (the Pub/Sub emulator's JVM accepts connections before it serves),
so each probe makes a real call: ``ListTopics`` / ``ListTables``. Usable from the stack
manager, and from a shell::

    python -m pulse_local.resources.probe pubsub   [--host 127.0.0.1:8085]
    python -m pulse_local.resources.probe bigtable [--host 127.0.0.1:8086]

(exit status 0 when ready, 1 with the reason on stderr otherwise).
"""

from __future__ import annotations

import argparse
import sys

from pulse_local.errors import ServiceUnavailable
from pulse_local.resources.clients import (
    bigtable_admin_client,
    close_bigtable_client,
    close_pubsub_clients,
    pubsub_clients,
)

#: Seconds a probe waits for its answer.
PROBE_TIMEOUT = 2.0


def pubsub_ready(host: str, project: str, timeout: float = PROBE_TIMEOUT) -> None:
    """Return when the Pub/Sub emulator at ``host`` (``host:port``) answers ``ListTopics``.

    Raises `ServiceUnavailable` otherwise; no retries, the caller decides how long to wait.
    """
    from google.api_core import exceptions as gexc

    publisher, subscriber = pubsub_clients(host)
    try:
        pages = publisher.list_topics(
            request={"project": f"projects/{project}", "page_size": 1}, timeout=timeout, retry=None
        )
        next(iter(pages.pages))
    except gexc.GoogleAPIError as exc:
        raise ServiceUnavailable(
            f"Pub/Sub emulator at {host} does not answer ListTopics ({exc}): start it with "
            f"`pulse-local up` or `gcloud beta emulators pubsub start --host-port={host}`"
        ) from exc
    finally:
        close_pubsub_clients(publisher, subscriber)


def bigtable_ready(host: str, project: str, instance: str, timeout: float = PROBE_TIMEOUT) -> None:
    """Return when the Bigtable emulator at ``host`` (``host:port``) answers ``ListTables``.

    Raises `ServiceUnavailable` otherwise; no retries.
    """
    from google.api_core import exceptions as gexc

    client = bigtable_admin_client(project, host)
    try:
        client.table_admin_client.list_tables(
            request={"parent": f"projects/{project}/instances/{instance}"},
            timeout=timeout,
            retry=None,
        )
    except gexc.GoogleAPIError as exc:
        raise ServiceUnavailable(
            f"Bigtable emulator at {host} does not answer ListTables ({exc}): start it with "
            f"`pulse-local up` or `gcloud beta emulators bigtable start --host-port={host}`"
        ) from exc
    finally:
        close_bigtable_client(client)


def main(argv: list[str] | None = None) -> int:
    """Command line entry: probe one emulator with the settings' defaults."""
    from pulse_local.config import load_settings

    parser = argparse.ArgumentParser(prog="python -m pulse_local.resources.probe")
    parser.add_argument("service", choices=["pubsub", "bigtable"])
    parser.add_argument("--host", help="host:port (default: the emulator variable or settings)")
    parser.add_argument("--timeout", type=float, default=PROBE_TIMEOUT)
    args = parser.parse_args(argv)
    settings = load_settings()
    try:
        if args.service == "pubsub":
            host = (
                args.host
                or settings.pubsub_emulator_host
                or f"{settings.host}:{settings.pubsub_port}"
            )
            pubsub_ready(host, settings.project, timeout=args.timeout)
        else:
            host = (
                args.host
                or settings.bigtable_emulator_host
                or (f"{settings.host}:{settings.bigtable_port}")
            )
            bigtable_ready(host, settings.project, settings.bigtable_instance, timeout=args.timeout)
    except ServiceUnavailable as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"{args.service} ready at {host}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
