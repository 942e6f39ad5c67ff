"""The process GC policy freezes the startup heap and applies the configured thresholds."""

from __future__ import annotations

import gc

from workers.gc_tuning import tune_gc


def test_tune_gc_freezes_and_sets_thresholds() -> None:
    before = gc.get_threshold()
    try:
        tune_gc([12345, 17, 19])
        assert gc.get_threshold() == (12345, 17, 19)
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
