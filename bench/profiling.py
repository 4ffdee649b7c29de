"""Run a benchmark case under pyinstrument, from the moment it says the warm-up is over.

Shared by the ``bench/profile_*.py`` scripts. pyinstrument is a profiling aid installed
by hand (``.venv/bin/pip install pyinstrument``), not a dependency.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import trio

Begin = Callable[[], Awaitable[None]]
"""What a case awaits once its warm-up is done: profiling starts there."""


def run_profiled(case: Callable[[Begin], Awaitable[None]], *, profile: bool) -> None:
    """``trio.run(case, begin)``; with ``profile``, print pyinstrument's report of it."""

    async def nothing() -> None:
        pass

    if not profile:
        trio.run(case, nothing)
        return
    from pyinstrument import Profiler

    profiler = Profiler(async_mode="disabled")

    async def begin() -> None:
        profiler.start()

    trio.run(case, begin)
    profiler.stop()
    print(profiler.output_text(unicode=True, color=False, show_all=False))
