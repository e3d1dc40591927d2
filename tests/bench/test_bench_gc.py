"""The load generator freezes its heap for a measured cell only: frozen, a full collection cannot stall
all N clients at once; unfrozen after, so each cell's garbage is still collected."""

from __future__ import annotations

import gc

from bench.run import frozen_heap


def test_heap_is_frozen_during_a_cell_and_released_after() -> None:
    # Hubs started in this test process by other tests froze its heap at their start-up.
    gc.unfreeze()
    with frozen_heap():
        assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0


def test_heap_is_released_when_the_cell_fails() -> None:
    try:
        with frozen_heap():
            raise RuntimeError("the cell failed")
    except RuntimeError:
        pass
    assert gc.get_freeze_count() == 0
