"""``python -m pulse_local.cdc {serve,drain,resync,lag,describe} [--config stream.yaml]``."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from pulse_local.config import load_settings
from pulse_local.errors import PulseError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pulse_local.cdc",
                                     description="Local Datastream: change data capture.")
    parser.add_argument("command", choices=["serve", "drain", "resync", "lag", "describe"])
    parser.add_argument("--config", type=Path, default=None,
                        help="stream declaration (default emulators/datastream/stream.yaml)")
    parser.add_argument("--create", action="store_true",
                        help="describe: create the stream on GCP instead of printing it")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from pulse_local import cdc
    from pulse_local.cdc import provision

    try:
        settings = load_settings()
        config = cdc.load_stream_config(args.config)
        if args.command == "serve":
            cdc.serve(settings, config)
        elif args.command in ("drain", "resync"):
            report = (cdc.drain if args.command == "drain" else cdc.resync)(settings, config)
            print(json.dumps(report.__dict__, indent=1))
        elif args.command == "lag":
            print(cdc.lag(settings, config).summary())
        else:
            from pulse_local.backends import for_profile

            provision.print_or_create(
                settings, dry_run=not args.create, config=config,
                change_streams=for_profile(settings).change_streams if args.create else None)
    except PulseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
