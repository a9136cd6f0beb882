"""``python -m pulse_local.streaming``: the consumer service and its maintenance commands.

    python -m pulse_local.streaming consume                      # until SIGTERM/SIGINT
    python -m pulse_local.streaming consume --idle-timeout 5     # drain, then exit
    python -m pulse_local.streaming fold                         # fold leftover pending entries
    python -m pulse_local.streaming views                        # DuckDB views on the raw sink
"""

from __future__ import annotations

import argparse
import logging
import sys
import time

from pulse_local.config import load_settings
from pulse_local.errors import PulseError


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m pulse_local.streaming")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("consume", help="stream response-events into Bigtable")
    run.add_argument("--max-messages", type=int, default=None)
    run.add_argument("--idle-timeout", type=float, default=None)
    run.add_argument("--child-of", type=int, default=None, help=argparse.SUPPRESS)
    sub.add_parser("fold", help="fold the pending aggregate entries of events done long "
                                "enough (what stopped consumers left) into the counters")
    sub.add_parser("views", help="create the raw sink's views in the local DuckDB file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = load_settings()
        from pulse_local.backends import require_emulator_endpoints, use_profile

        if args.command in ("consume", "fold"):
            require_emulator_endpoints(settings, f"python -m pulse_local.streaming {args.command}",
                                       pubsub=args.command == "consume", bigtable=True)
        use_profile(settings)
        if args.command == "consume":
            from pulse_local.streaming.consumer import consume, serve

            if args.max_messages is None and args.idle_timeout is None:
                report = serve(settings, child_of=args.child_of)
            else:
                report = consume(settings, max_messages=args.max_messages,
                                 idle_timeout=args.idle_timeout)
            print(report.summary())
        elif args.command == "fold":
            from pulse_local.config import load_options
            from pulse_local.streaming.options import StreamingOptions
            from pulse_local.streaming.store import EventStore

            # the consumers' fold_after: a shorter one could fold before a late write lands
            fold_after = load_options(StreamingOptions).fold_after
            store = EventStore.for_settings(settings, fold_after=fold_after)
            try:
                # A new process has seen nothing done yet: the first pass learns which events
                # are done, the second (fold_after later) folds them.
                store.fold(everything=True)
                time.sleep(store.fold_after)
                folded = store.fold(everything=True)
                print(f"folded {folded.folded_entries} entries in {folded.folded_rows} rows; "
                      f"{folded.waiting} still pending (events not done), "
                      f"{folded.conflicts} rows changed meanwhile (run again)")
            finally:
                store.close()
        else:
            from pulse_local.streaming.sink import ensure_views, raw_events_dir

            ensure_views(settings)
            print(f"views raw.pubsub_response_events(_dedup) over {raw_events_dir(settings)}")
    except PulseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
