"""`settle_garbage_collector` (no services; restores the interpreter's settings after)."""

from __future__ import annotations

import gc

from pulse_local.runtime import GC_THRESHOLDS, settle_garbage_collector


def test_settling_freezes_what_is_alive_and_spaces_collections_out() -> None:
    thresholds = gc.get_threshold()
    try:
        before = gc.get_freeze_count()
        settle_garbage_collector()
        assert gc.get_freeze_count() > before + 10_000  # pytest and its plugins alone
        assert gc.get_threshold() == GC_THRESHOLDS
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
