"""Start-up leaves the collector tuned for serving: the start-up heap frozen, gen-0 collections rarer than
CPython's default (docs/benchmarks.md, "The 8-session tail")."""

from __future__ import annotations

import gc

from fastapi import FastAPI

from mcp_hub.app import GC_GEN0_THRESHOLD


async def test_startup_freezes_the_heap_and_raises_the_gen0_threshold(app: FastAPI) -> None:
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold()[0] == GC_GEN0_THRESHOLD > 700
