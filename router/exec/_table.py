"""The calls of one plugin incarnation, as plain data: ids, the send queue, deadlines.

Application layer version 2 matches answers to calls by integer id. This table is the
router's side of that bookkeeping, with no trio and no I/O (the trio adapter is
:class:`~router.exec._live.Live`), so its rules can be tested on their own:

- Ids start at 1 and increase in the order calls are *sent*: calls queue in FIFO
  order and leave the queue in that order.
- A plugin never has more than ``concurrency`` calls unanswered. A call the router gave
  up on (timeout, cancelled caller) still counts until the plugin answers it: the plugin
  is still working on it. Calls beyond the limit wait in a backlog.
- A call given up after it was committed is queued in :attr:`CallTable.to_cancel`,
  when the plugin takes ``cancel`` requests: its answer (to the cancel) frees the place.
- A plugin is *wedged* when a call gave up waiting in the backlog while every place was
  held by a call given up on at least a grace period earlier: it serves nobody, and
  only a restart frees its places (:meth:`CallTable.wedged`).
- An answer for an id never sent is a protocol violation (:class:`NeverMade`); an
  answer for a call no longer waited for (given up, answered twice) is ignored.
- Deadlines sit in a heap whose stale entries (calls already answered) are dropped when
  they reach the top, or all at once when they outnumber live calls.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from typing import Any, Generic, TypeVar

from plugin_sdk import Message
from plugin_sdk.app import message_nesting
from plugin_sdk.wire import nesting

__all__ = ["CallTable", "NeverMade", "entry_weight"]

D = TypeVar("D")
"""What the caller stores per call (the exec layer stores its completion callback)."""

_REBUILD_SLACK = 64
"""Stale heap entries tolerated beyond twice the live calls before a rebuild."""


def entry_weight(entry: list[Any]) -> int:
    """A cheap guess at a call entry's encoded size: its body's, when bytes or text."""
    message = entry[1]
    body = message.get("body") if isinstance(message, dict) else None
    return len(body) + 64 if type(body) is bytes or type(body) is str else 256


class NeverMade(ValueError):
    """The plugin answered a call id that was never sent to it."""

    def __init__(self, call_id: int) -> None:
        super().__init__(f"answered call {call_id}, which was never made")
        self.call_id = call_id


class CallTable(Generic[D]):
    """Calls waiting for a plugin's answer, keyed by call id."""

    __slots__ = (
        "_backlog",
        "_committed",
        "_committed_max",
        "_deadlines",
        "_given_up",
        "_last_starved",
        "_next_id",
        "cancels",
        "concurrency",
        "outbox",
        "outbox_nesting",
        "outbox_weight",
        "pending",
        "sent_max",
        "to_cancel",
    )

    def __init__(self, concurrency: int, *, cancels: bool = False) -> None:
        self.concurrency = concurrency
        """The most calls the plugin may have unanswered (its ``info.concurrency``)."""
        self.cancels = cancels
        """The plugin takes ``cancel`` requests (it named the feature in ``ready``)."""
        self.to_cancel: list[int] = []
        """Ids of committed calls given up on, for the next ``cancel`` request."""
        self.pending: dict[int, D] = {}
        """Calls still waited for (queued or sent), by id."""
        self.outbox: list[list[Any]] = []
        """Call entries ready to go out in the next ``call`` request, in id order."""
        self.outbox_weight = 0
        """The :func:`entry_weight` of the outbox's entries, summed."""
        self.outbox_nesting = 0
        """How deep the outbox's deepest message nests (``message_nesting``), so a
        ``call`` request of the outbox nests ``CALLS_NESTING`` more."""
        self.sent_max = 0
        """The highest call id sent so far (0: none)."""
        self._next_id = 1
        self._backlog: deque[list[Any]] = deque()
        self._committed = 0  # sent and unanswered, plus in the outbox
        self._committed_max = 0  # the highest id moved to the outbox
        # Committed, no longer waited for, unanswered: when each was given up.
        self._given_up: dict[int, float] = {}
        self._last_starved = -math.inf  # when a call last gave up waiting in the backlog
        self._deadlines: list[tuple[float, int]] = []

    def add(self, message: Message, data: D, expires: float = math.inf) -> int:
        """Queue a call to ``message``; return its id. It expires at ``expires``."""
        call_id = self._next_id
        self._next_id = call_id + 1
        self.pending[call_id] = data
        entry = [call_id, message.to_wire()]  # call_entry, inline: once per call
        if self._backlog or self._committed >= self.concurrency:
            self._backlog.append(entry)
        else:
            self.outbox.append(entry)
            # entry_weight and message_nesting, inline for the usual message (a bytes
            # or text body, no headers): once per call.
            body = message.body
            if (type(body) is bytes or type(body) is str) and not message.headers:
                self.outbox_weight += len(body) + 64
                if self.outbox_nesting < 2:
                    self.outbox_nesting = 2  # its map, and its empty headers map
            else:
                self.outbox_weight += entry_weight(entry)
                depth = message_nesting(message)
                if depth > self.outbox_nesting:
                    self.outbox_nesting = depth
            self._committed += 1
            self._committed_max = call_id
        if expires != math.inf:
            heap = self._deadlines
            heapq.heappush(heap, (expires, call_id))
            if len(heap) > 2 * len(self.pending) + _REBUILD_SLACK:
                self._prune()
        return call_id

    @property
    def unanswered(self) -> int:
        """Calls sent (or about to be) that the plugin has not answered, given up or not."""
        return self._committed

    @property
    def in_flight(self) -> int:
        """Calls sent and still waited for (what a vanishing plugin leaves unanswered)."""
        sent_max = self.sent_max
        return sum(1 for call_id in self.pending if call_id <= sent_max)

    def take(self) -> list[list[Any]]:
        """Hand over the outbox (the caller sends it, then reports :meth:`sent`)."""
        entries, self.outbox = self.outbox, []
        self.outbox_weight = 0
        self.outbox_nesting = 0
        return entries

    def sent(self, entries: list[list[Any]]) -> None:
        """``entries`` (from :meth:`take`, in order) went out."""
        if entries:
            self.sent_max = max(self.sent_max, entries[-1][0])

    def unsendable(self, entries: list[list[Any]]) -> list[D]:
        """``entries`` could not be sent and never will be: forget them, return their data."""
        found: list[D] = []
        for entry in entries:
            call_id = entry[0]
            self._committed -= 1
            self._given_up.pop(call_id, None)
            data = self.pending.pop(call_id, None)
            if data is not None:
                found.append(data)
        self._refill()
        return found

    def resolve(self, call_id: int) -> D | None:
        """The plugin answered ``call_id``: return its data, or None if nobody waits.

        Raises :class:`NeverMade` for an id that was never sent.
        """
        if call_id > self.sent_max:
            raise NeverMade(call_id)
        data = self.pending.pop(call_id, None)
        if data is not None or self._given_up.pop(call_id, None) is not None:
            self._committed -= 1  # its place is free (inline: once per answer)
            if self._backlog:
                self._refill()
        return data

    def _refill(self) -> None:
        backlog = self._backlog
        pending = self.pending
        while backlog and self._committed < self.concurrency:
            entry = backlog.popleft()
            if entry[0] in pending:  # else given up while waiting: never sent
                self.outbox.append(entry)
                self.outbox_weight += entry_weight(entry)
                self.outbox_nesting = max(self.outbox_nesting, nesting(entry[1]))
                self._committed += 1
                self._committed_max = entry[0]

    def give_up(self, call_id: int, now: float) -> D | None:
        """Stop waiting for ``call_id`` at time ``now``: return its data (None if it ended).

        A call already committed to the plugin keeps its place until answered (its
        late answer is then ignored), and goes in :attr:`to_cancel` if the plugin
        takes cancels; one still in the backlog is never sent.
        """
        data = self.pending.pop(call_id, None)
        if data is not None:
            if call_id <= self._committed_max:
                self._given_up[call_id] = now
                if self.cancels:
                    self.to_cancel.append(call_id)
            else:
                self._last_starved = now
        return data

    @property
    def cancels_ready(self) -> bool:
        """Whether :meth:`take_cancels` has ids to hand over."""
        sent_max = self.sent_max
        given_up = self._given_up
        return any(call_id <= sent_max and call_id in given_up for call_id in self.to_cancel)

    def take_cancels(self) -> list[int]:
        """Hand over the ids of :attr:`to_cancel` whose calls went out, for one ``cancel``.

        A cancel must not overtake its call, so a call still in the outbox stays queued
        until it is :meth:`sent`; calls answered meanwhile are left out.
        """
        sent_max = self.sent_max
        given_up = self._given_up
        ready: list[int] = []
        later: list[int] = []
        for call_id in self.to_cancel:
            if call_id in given_up:
                (ready if call_id <= sent_max else later).append(call_id)
        self.to_cancel = later
        return ready

    def wedged(self, grace: float) -> bool:
        """Whether the plugin serves nobody: only a restart can free its places.

        True when a call gave up waiting for a place in the backlog at least ``grace``
        after the newest of the calls holding every place was given up: the plugin had
        that long to finish work nobody waits for any more, and did not. (A plugin
        that is merely slow answers its given-up calls and frees its places.)
        """
        given_up = self._given_up
        return (
            self._committed >= self.concurrency
            and len(given_up) == self._committed
            and self._last_starved >= max(given_up.values()) + grace
        )

    @property
    def given_up_held(self) -> int:
        """Places held by calls given up on (the plugin has not answered them yet)."""
        return len(self._given_up)

    def expire(self, now: float) -> list[D]:
        """Give up every call whose deadline is at or before ``now``; return their data."""
        heap = self._deadlines
        expired: list[D] = []
        while heap and heap[0][0] <= now:
            data = self.give_up(heapq.heappop(heap)[1], now)
            if data is not None:
                expired.append(data)
        return expired

    def next_deadline(self) -> float:
        """When the earliest call still waited for expires (``math.inf``: none does)."""
        heap = self._deadlines
        pending = self.pending
        while heap and heap[0][1] not in pending:
            heapq.heappop(heap)
        return heap[0][0] if heap else math.inf

    def _prune(self) -> None:
        pending = self.pending
        self._deadlines = [entry for entry in self._deadlines if entry[1] in pending]
        heapq.heapify(self._deadlines)

    def clear(self) -> list[D]:
        """Forget every call (the plugin is gone); return the data of those waited for."""
        found = list(self.pending.values())
        self.pending.clear()
        self.outbox.clear()
        self.outbox_weight = 0
        self.outbox_nesting = 0
        self._backlog.clear()
        self._given_up.clear()
        self.to_cancel.clear()
        self._last_starved = -math.inf
        self._deadlines.clear()
        self._committed = 0
        return found
