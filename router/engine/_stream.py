"""One ``route_stream`` call: its inputs in pull order, and who waits for what."""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterable
from typing import TYPE_CHECKING, Protocol

import trio
from trio.lowlevel import ParkingLot

from plugin_sdk import Message

from ..result import Result

if TYPE_CHECKING:
    from ._job import Job

__all__ = ["Pending", "Place", "Stream", "wake_puller"]


class Place(Protocol):
    """An input's place in a stream's order (a :class:`Pending`, or a straight input's
    :class:`~router.engine._flow.Flow`)."""

    outcome: Result | BaseException | None
    """The input's outcome, once known."""
    holds: bool
    """It holds an in-flight place (given back when it is yielded or abandoned)."""


class Pending:
    """A stream input's place in the output order, and its outcome once known."""

    __slots__ = ("holds", "outcome")

    def __init__(self) -> None:
        self.outcome: Result | BaseException | None = None
        self.holds = True
        """It holds an in-flight place (given back when it is yielded or abandoned)."""


class Stream:
    """One ``route_stream`` call: the inputs in pull order and who waits for what.

    Workers take turns pulling (``pulling`` and ``pull_lot`` make a lock that costs
    nothing when free), each routes what it pulled, and the consumer yields from the
    head of ``order`` as soon as the head's outcome is known.
    """

    __slots__ = (
        "closed",
        "consumer",
        "consumer_parked",
        "detached",
        "drained",
        "exhausted",
        "handed",
        "items",
        "nursery",
        "order",
        "pull_lot",
        "pulling",
        "served",
        "workers",
    )

    def __init__(self, items: AsyncIterable[Message | Result]) -> None:
        self.items = aiter(items)
        self.order: deque[Place] = deque()
        self.pulling = False
        self.pull_lot = ParkingLot()
        self.handed: deque[tuple[Place, Job]] = deque()
        """Inputs pulled for an idle worker, which takes them in order."""
        self.consumer = ParkingLot()
        self.consumer_parked = False
        """The consumer waits in :attr:`consumer` (a plain flag: read once per input)."""
        self.exhausted = False
        """No more inputs will be pulled (the end, an error, a bad item, or closed)."""
        self.closed = False
        """The consumer has gone: it will yield (and release) nothing more."""
        self.served = False
        """Every worker has exited: an outcome still unknown will never be known."""
        self.detached = 0
        """Inputs waiting on a callback (see ``Job.detached``): the stream is not
        served until they are settled."""
        self.drained = ParkingLot()
        self.nursery: trio.Nursery | None = None
        """Where the stream's workers run (set once it is served)."""
        self.workers = 0
        """Workers started so far (at most the router's ``max_in_flight``)."""

    def detach(self) -> None:
        self.detached += 1

    def reattach(self) -> None:
        self.detached -= 1
        if not self.detached and self.drained:
            self.drained.unpark_all()

    def settle(self, pending: Place, outcome: Result | BaseException) -> None:
        pending.outcome = outcome
        if self.consumer_parked and self.order[0] is pending:
            self.consumer.unpark_all()

    def finish(self) -> None:
        self.exhausted = True
        if self.consumer:
            self.consumer.unpark_all()
        if self.pull_lot:
            self.pull_lot.unpark_all()  # idle workers: take what was handed out, or exit


def wake_puller(stream: Stream) -> None:
    """Wake an idle worker to pull next, if one waits."""
    if stream.pull_lot:
        stream.pull_lot.unpark()
