"""``python -m pulse_local.monitoring``: run the checks once, print them, send alerts.

    python -m pulse_local.monitoring                    # every group; exit 1 when an error fails
    python -m pulse_local.monitoring --group cdc --group streaming
    python -m pulse_local.monitoring --json --no-alerts

Example: ``PULSE_ALERT_WEBHOOK_URL=https://hooks.slack.com/... python -m pulse_local.monitoring``
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from pulse_local.config import load_settings
from pulse_local.errors import PulseError


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (1 when a check of severity error
    failed, 2 when the monitor itself could not start)."""
    from pulse_local.monitoring import (
        GROUPS,
        alerts_for,
        load_config,
        run_checks,
        send_alerts,
        sinks_for,
    )

    parser = argparse.ArgumentParser(
        prog="python -m pulse_local.monitoring",
        description="Check the pipeline against monitoring.yaml and alert on failures.",
        epilog="Example: python -m pulse_local.monitoring --group freshness --no-alerts")
    parser.add_argument("--group", action="append", choices=GROUPS,
                        help="run only this check group (repeatable)")
    parser.add_argument("--config", default=None, help="SLA file (default monitoring.yaml)")
    parser.add_argument("--no-alerts", action="store_true", help="do not send alerts")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = load_settings()
        config = load_config(args.config)
        report = run_checks(settings, config, groups=args.group)
        outcome = None if args.no_alerts else send_alerts(alerts_for(report), sinks_for(settings))
    except PulseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({**report.as_dict(),
                          "alerts": outcome.summary() if outcome else "not sent"}, indent=2))
    else:
        from rich.console import Console

        Console().print(report.rich_table())
        print(report.summary().splitlines()[-1])
        if outcome is not None:
            print(outcome.summary())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
