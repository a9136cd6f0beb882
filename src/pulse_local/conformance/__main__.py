"""`python -m pulse_local.conformance [--wrong] [--show OUTCOME] [FILE ...]`: a measurement.

Prints per file: correct / wrong / untranslatable / error / skipped, the totals and the
percentage correct (of the cases not skipped). Exits 0 whatever the numbers; non-zero
only when the runner itself cannot run (missing mirror, crash).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter

from pulse_local.conformance.runner import OUTCOMES, CaseResult, FileReport, run_file_isolated
from pulse_local.conformance.scope import in_scope_files
from pulse_local.conformance.source import ComplianceMirrorMissing, ComplianceSource


def _percent(counts: Counter[str]) -> str:
    measured = sum(counts[o] for o in OUTCOMES if o != "skipped")
    return f"{100.0 * counts['correct'] / measured:5.1f}%" if measured else "    -"


def _line(label: str, counts: Counter[str]) -> str:
    cells = " ".join(f"{counts[o]:>{max(len(o), 5)}}" for o in OUTCOMES)
    return f"{label:<46} {cells} {_percent(counts)}"


def _detail(result: CaseResult) -> str:
    lines = [f"--- {result.file}:{result.name} [{result.outcome}] {result.reason}",
             "query:      " + result.sql.replace("\n", "\n            ")]
    if result.translated:
        lines.append("translated: " + result.translated.replace("\n", "\n            "))
    if result.expected:
        lines.append("expected:   " + result.expected[:2000])
    if result.got:
        lines.append("got:        " + result.got[:2000])
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pulse_local.conformance", description=__doc__)
    parser.add_argument("files", nargs="*", help="compliance files to run (default: the in-scope list)")
    parser.add_argument("--wrong", action="store_true", help="list wrong cases: query, expected, got")
    parser.add_argument("--show", action="append", default=[], choices=OUTCOMES,
                        help="list the cases with this outcome (repeatable)")
    parser.add_argument("--reasons", action="store_true", help="count the skip/error/untranslatable reasons")
    args = parser.parse_args(argv)
    show = set(args.show) | ({"wrong"} if args.wrong else set())
    try:
        source = ComplianceSource()
    except ComplianceMirrorMissing as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    names = args.files or in_scope_files()
    available = set(source.names())
    unknown = [n for n in names if n not in available]
    if unknown:
        print(f"error: no such compliance files in {source.path}: {', '.join(unknown)}", file=sys.stderr)
        return 2
    started = time.monotonic()
    reports: list[FileReport] = []
    print(f"{'file':<46} " + " ".join(f"{o:>{max(len(o), 5)}}" for o in OUTCOMES) + " correct")
    for name in names:
        report = run_file_isolated(source, name)
        reports.append(report)
        print(_line(name, report.counts()), flush=True)
    total: Counter[str] = Counter()
    for report in reports:
        total.update(report.counts())
    print(_line(f"TOTAL ({len(reports)} files)", total))
    print(f"correct = correct / (all - skipped); {time.monotonic() - started:.0f} s")
    for report in reports:
        for result in report.results:
            if result.outcome in show:
                print(_detail(result))
    if args.reasons:
        reasons: Counter[str] = Counter()
        for report in reports:
            for result in report.results:
                if result.outcome in ("skipped", "error", "untranslatable"):
                    reasons[f"{result.outcome}: {result.reason[:110]}"] += 1
        for reason, count in reasons.most_common(60):
            print(f"{count:6} {reason}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
