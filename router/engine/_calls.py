"""Making one plugin call: its outcome's bookkeeping, timeouts and deadlines.

Shared by the engine's paths (``route``, streamed inputs, the general path): how a
call is counted in its plugin's stats, how an exception reads in a trace, how a
submitted call is awaited or called back, and when a message's ``deadline`` header
expires on trio's clock.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Final

import trio

from plugin_sdk import Headers, Message, Reply, Verdict

from ..pipeline import Call, Routing
from ..result import describe_exception
from ._gate import Ticket
from ._snapshot import Slot, Submit

if TYPE_CHECKING:
    from ._job import Job
    from ._router import Router

__all__ = [
    "DEADLINE",
    "DEADLINE_PASSED",
    "Attempt",
    "await_submitted",
    "awaited",
    "deadline_passed",
    "expiry",
    "record",
]

_CONTINUE: Final = Verdict.CONTINUE
_ERROR: Final = Verdict.ERROR
_DROP: Final = Verdict.DROP


def record(slot: Slot, reply: Reply | None, error: str | None, duration: float) -> None:
    """Count a call that ended (not by timing out) in its plugin's stats."""
    if error is None and type(reply) is Reply and reply.verdict is _CONTINUE:
        slot.stats.record_ok(duration)  # the usual call, without working out how it failed
        return
    failed = error is not None or not isinstance(reply, Reply) or reply.verdict == _ERROR
    dropped = not failed and reply is not None and reply.verdict == _DROP
    slot.stats.record(duration, dropped=dropped, failed=failed, timed_out=False)


DEADLINE_PASSED: Final = "the message's deadline passed"
"""The error of a call whose message's deadline passed."""
DEADLINE: Final = Headers.DEADLINE
"""The header a straight input must not carry (deadlines are the general path's)."""


async def awaited(
    slot: Slot, pending: Awaitable[Reply], start: float, expires: float
) -> tuple[Reply | None, str | None, bool, bool]:
    """Await an in-process plugin's async answer under its timeout.

    Returns (reply, error, timed_out, expired) for :meth:`Routing.complete`.
    """
    timeout = slot.info.timeout
    with trio.CancelScope(deadline=min(start + timeout, expires)):
        try:
            return await pending, None, False, False
        except Exception as exc:
            return None, describe_exception(exc), False, False
    # Reached only when the scope caught its own cancellation: the call overran.
    expired = expires < start + timeout
    return None, DEADLINE_PASSED if expired else f"timed out after {timeout:g}s", True, expired


def deadline_passed(routing: Routing, slot: Slot, call: Call, ticket: Ticket) -> list[Call]:
    """End a call whose message's deadline passed before it could start; the next calls."""
    ticket.release()
    record(slot, None, DEADLINE_PASSED, 0.0)
    return routing.complete_next(
        call.token, None, duration=0.0, error=DEADLINE_PASSED, expired=True
    )


class Attempt:
    """A call handed to a plugin's ``submit``: what reporting its outcome needs.

    For a detached input it is also the ``done`` callback given to ``submit`` (no
    ``partial`` or closure per call): ``job`` and ``router`` are set, and calling it
    keeps the outcome and queues :meth:`Router._submitted`.
    """

    __slots__ = ("call", "expires", "job", "outcome", "router", "slot", "start", "ticket")

    def __init__(
        self, slot: Slot, call: Call, ticket: Ticket, start: float, expires: float
    ) -> None:
        self.slot = slot
        self.call = call
        self.ticket = ticket
        self.start = start
        self.expires = expires
        self.job: Job | None = None
        self.router: Router | None = None
        self.outcome: tuple[Reply | None, str | None, bool] | None = None

    def __call__(self, reply: Reply | None, error: str | None, timed_out: bool) -> None:
        router = self.router
        assert router is not None
        self.outcome = (reply, error, timed_out)
        router._later(router._submitted, self)

    def complete(
        self,
        routing: Routing,
        reply: Reply | None,
        error: str | None,
        timed_out: bool,
        now: float,
    ) -> list[Call]:
        """Report the outcome at ``now`` to ``routing`` (and the plugin's stats); the next calls."""
        slot, start, expires = self.slot, self.start, self.expires
        self.ticket.release()
        duration = now - start
        expired = False
        if timed_out:
            expired = expires < start + slot.info.timeout
            error = DEADLINE_PASSED if expired else f"timed out after {slot.info.timeout:g}s"
            slot.stats.record(duration, dropped=False, failed=True, timed_out=True)
        else:
            record(slot, reply, error, duration)
        return routing.complete_next(
            self.call.token,
            reply,
            duration=duration,
            error=error,
            timed_out=timed_out,
            expired=expired,
        )


async def await_submitted(
    submit: Submit, message: Message, expires: float
) -> tuple[Reply | None, str | None, bool]:
    """Submit a call and wait for its outcome, without a cancel scope of our own.

    The handle enforces ``expires`` itself. If this wait is cancelled from outside,
    the call is abandoned at the handle (when it offers that) and its later outcome
    is dropped. A ``submit`` that raises makes a failed call with that error.
    """
    task = trio.lowlevel.current_task()
    box: list[tuple[Reply | None, str | None, bool] | None] = []

    def done(reply: Reply | None, error: str | None, timed_out: bool) -> None:
        if not box:  # else the wait was given up
            box.append((reply, error, timed_out))
            trio.lowlevel.reschedule(task)

    def abort(_: object) -> trio.lowlevel.Abort:
        box.append(None)
        if abandon is not None:
            abandon()  # the plugin may stop the call (and free its place) now
        return trio.lowlevel.Abort.SUCCEEDED

    try:
        abandon = submit(message, expires, done)
    except Exception as exc:  # the handle's bug: a failed call, not a lost message
        return None, describe_exception(exc), False
    await trio.lowlevel.wait_task_rescheduled(abort)
    outcome = box[0]
    assert outcome is not None
    return outcome


_NUMBER: Final = (int, float)  # a tuple: ``int | float`` builds a union object per call


def expiry(message: Message, now: float) -> float:
    """The message's ``deadline`` header (epoch seconds) on trio's clock, or +inf."""
    headers = message.headers
    if not headers:
        return math.inf  # the usual case, without a lookup
    deadline = headers.get(Headers.DEADLINE)
    if not isinstance(deadline, _NUMBER) or isinstance(deadline, bool):
        return math.inf
    return now + (deadline - time.time())
