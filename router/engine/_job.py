"""One input on the engine's general path: its snapshot, its Routing, its first calls."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import trio

from ..pipeline import Call, Routing
from ._gate import Ticket
from ._snapshot import Snapshot

if TYPE_CHECKING:
    from ._stream import Place, Stream

__all__ = ["Job"]


@dataclass(eq=False, slots=True)
class Job:
    """One input being routed: its snapshot, its state machine, its first calls."""

    snapshot: Snapshot
    routing: Routing
    first: list[tuple[Call, Ticket]]
    scope: trio.CancelScope | None = None
    """The outermost fan-out nursery's scope (None until a reply fans out): cancelled
    once the result is known, to stop branches that can no longer matter."""
    waited: bool = False
    """Whether routing this input ever waited (False: only synchronous calls ran)."""
    stream: Stream | None = None
    """The stream this input came from: set, the input may *detach* (below)."""
    detached: bool = False
    """Routing this input is waiting for a submitted call, with no task waiting for it:
    the call's callback carries it on, and its outcome goes to :attr:`stream`."""
    pending: Place | None = None
    """The input's place in :attr:`stream`'s order."""

    def waits(self) -> None:
        """This input is about to wait (a ``route()`` then need not checkpoint)."""
        self.waited = True
