"""The plugin set at one moment: an immutable plan, the slots behind it, and lanes.

A plugin-set edit makes a new :class:`Snapshot`; an input holds the one it started
with until it is done (``active``), so a removed plugin is stopped only once nothing
can still call it. A :class:`Slot` is one registered handle with what the engine
keeps beside it: its FIFO gate, its fast ways in (``call_now``, ``submit``) and its
counters. A *lane* is a message type's pipeline with the slot at each position: what
a straight input walks.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Final

import trio

from plugin_sdk import Message, PluginInfo, Reply, replace

from ..handle import PluginHandle
from ..pipeline import Plan
from ._gate import FifoGate
from ._stats import PluginStats

__all__ = ["Done", "Lane", "Slot", "Snapshot", "Submit", "as_reply"]

Done = Callable[[Reply | None, str | None, bool], None]
"""``done(reply, error, timed_out)``: how a submitted call reports its outcome."""
Submit = Callable[[Message, float, Done], Callable[[], None] | None]
"""``submit(message, expires, done)``: start a call that ``done`` reports, later, once.

A handle may offer it beside ``call`` (router.exec's does). ``expires`` is the trio
time at which the handle gives the call up and reports ``timed_out``; ``done`` runs
exactly once, from a trio task, never inside ``submit``. ``submit`` may return an
*abandon* function: called when the caller stops waiting before ``expires`` (it was
cancelled), so that the handle can give the call up at once; it must only note that
and return (it may run outside any task), and ``done`` may then never run.
"""


def as_reply(answer: Message | Reply) -> Reply:
    """A synchronous ``call_now`` answer as a :class:`Reply`: a lone message stands for
    ``replace(message)`` (``Plugin.answer_now`` answers so, one object fewer per call)."""
    return replace(answer) if isinstance(answer, Message) else answer


@dataclass(eq=False, slots=True)
class Slot:
    """One registered handle with its limiter and counters."""

    handle: PluginHandle
    info: PluginInfo
    gate: FifoGate
    now: Callable[[Message], Message | Reply | Awaitable[Reply]] | None
    """The handle's ``call_now`` (in-process plugins): a reply without awaiting when
    the plugin's handler is synchronous; a lone :class:`Message` stands for
    ``replace(message)`` (see :func:`as_reply`)."""
    submit: Submit | None
    """The handle's ``submit`` (subprocess plugins): start a call and be called back
    with its outcome, so a stream input waits for a plugin without a task of its own."""
    stats: PluginStats = field(default_factory=PluginStats)

    @classmethod
    def of(cls, handle: PluginHandle) -> Slot:
        info = handle.info
        now = getattr(handle, "call_now", None)
        submit = getattr(handle, "submit", None)
        return cls(
            handle,
            info,
            FifoGate(info.concurrency),
            now if callable(now) else None,
            submit if callable(submit) else None,
        )


_LANES_MAX: Final = 4096
"""Message types whose lanes a snapshot keeps: types come from the outside world."""

Lane = tuple[tuple[PluginInfo, ...], tuple[Slot, ...]]
"""A type's pipeline and, position by position, the slots behind it."""


@dataclass(eq=False, slots=True)
class Snapshot:
    """The plugin set at one moment: an immutable plan and the handles behind it."""

    plan: Plan
    slots: dict[str, Slot]
    active: int = 0
    drained: trio.Event = field(default_factory=trio.Event)
    lanes: dict[str, Lane] = field(default_factory=dict)
    """Per message type: its pipeline and its slots (what a straight input walks)."""

    def lane(self, message_type: str) -> Lane:
        """``message_type``'s pipeline and the slot at each of its positions."""
        lane = self.lanes.get(message_type)
        if lane is None:
            if len(self.lanes) >= _LANES_MAX:
                self.lanes.clear()
            pipeline = self.plan.for_type(message_type)
            lane = (pipeline, tuple([self.slots[info.name] for info in pipeline]))
            self.lanes[message_type] = lane
        return lane
