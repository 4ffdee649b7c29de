"""A straight input: one ``route_stream`` input going straight down its pipeline.

See :class:`~router.pipeline.Straight` (the pure part) and the engine's
"straight inputs" (``Router._flow_run``): while every reply is a pass or a replace,
an input costs this one object, which is also its submitted call's callback.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from plugin_sdk import Message, Reply

from ..pipeline import Straight
from ..result import Result
from ._gate import Ticket
from ._snapshot import Lane, Slot, Snapshot
from ._stream import Stream

if TYPE_CHECKING:
    from ._router import Router

__all__ = ["Flow"]


class Flow(Straight):
    """A stream input going straight down its pipeline: a :class:`Straight` with the
    engine's bookkeeping.

    The one object an input costs while every reply is a pass or a replace: its
    routing state, its place in the stream's order (``outcome`` and ``holds``, as a
    :class:`Pending` has), and, while a subprocess plugin has its call, that call's
    ``done`` callback (no ``Job``, ``Routing``, ``Call``, ticket or ``Attempt`` per
    call). Anything else escalates it to a :class:`Job`.
    """

    __slots__ = (
        "holds",
        "outcome",
        "router",
        "slot",
        "slots",
        "snapshot",
        "start",
        "stream",
        "ticket",
    )

    def __init__(
        self,
        router: Router,
        stream: Stream,
        snapshot: Snapshot,
        message: Message,
        lane: Lane,
    ) -> None:
        pipeline, slots = lane
        Straight.__init__(self, message, pipeline, router.max_messages)
        self.outcome: Result | BaseException | None = None
        self.holds = True
        self.router = router
        self.stream = stream
        self.snapshot = snapshot
        self.slots = slots
        """The slot at each position of the input's pipeline."""
        self.slot: Slot | None = None
        """The slot whose call is outstanding (or whose turn is awaited)."""
        self.ticket: Ticket | None = None
        """That call's place in line, when it had to queue for one (None: it took a free
        place directly, without a ticket)."""
        self.start = 0.0

    def __call__(self, reply: Reply | None, error: str | None, timed_out: bool) -> None:
        """The outstanding submitted call's ``done``: carry the input on.

        The router's work, done here rather than in a method of its own: it runs once
        per subprocess call.
        """
        router = self.router
        stream = self.stream
        stream.detached -= 1  # stream.reattach(), inline
        if not stream.detached and stream.drained:
            stream.drained.unpark_all()
        slot = self.slot
        assert slot is not None
        duration = router._now() - self.start
        self.leave_gate(slot)
        try:
            if error is None and not timed_out and self.step(reply, duration):
                stats = slot.stats
                stats.handled += 1
                stats.latencies.append(duration)
                if self.position >= len(self.pipeline):
                    # The end, without _flow_run's set-up: the usual case, one plugin.
                    router._flow_settle(self, self.result())
                    return
                work = router._flow_run(self)
            else:
                work = router._escalated_answered(self, slot, reply, error, timed_out, duration)
        except Exception as exc:  # a bug, but never one that loses the input
            router._flow_settle(self, exc)
            return
        if work is not None:
            router._continue_in_task(*work)

    def leave_gate(self, slot: Slot) -> None:
        """Give back the place at ``slot``'s gate that the outstanding call held."""
        ticket = self.ticket
        if ticket is None:
            gate = slot.gate  # taken directly, without a ticket (see Router._flow_run)
            gate._active -= 1
            if gate._queue:
                gate._admit()
        else:
            self.ticket = None
            ticket.release()

    def admitted(self) -> None:
        """The outstanding call's turn at its plugin's gate has come."""
        self.router._later(self.router._flow_admitted, self)
