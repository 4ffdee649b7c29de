"""One running incarnation of a subprocess plugin: its process, session and calls.

The supervisor (:mod:`._handle`) makes one per (re)start. Once the plugin is ready,
three tasks serve it (application layer version 2, docs/PROTOCOL.md):

- the *flusher* sends queued calls, all those made in one scheduling round in one
  ``call`` request on the calls channel;
- the *answers pump* listens on the plugin's control channel: each ``replies``
  message completes the calls it names as the session decodes it (in the session's
  reading task, so no task wakes per batch); the pump itself only learns how the
  channel ends;
- the *timer* gives up calls whose deadline passed (one task and a heap, instead of a
  cancel scope per call). A plugin that named the ``cancel`` feature is told, in one
  ``cancel`` request per round sent by the flusher: it stops those handlers and
  answers, which frees their places at once.

A call is ``submit(message, expires, done)``: ``done(reply, error, timed_out)`` runs
exactly once, later, from one of those tasks or the session's reading task (or from
:meth:`Live.die` / :meth:`Live.end`). ``die(reason)`` is the single way an incarnation
ends abnormally: it records the first reason, fails every call still waited for, and
wakes the supervisor, which kills and reaps.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Callable
from typing import Any

import trio
from trio.lowlevel import ParkingLot

from plugin_sdk import Message, PluginInfo, Reply
from plugin_sdk.app import (
    CALLS_NESTING,
    AppProtocolError,
    Ping,
    calls_to_wire,
    cancel_to_wire,
    check_pong,
    parse_answers,
)
from plugin_sdk.session import ChannelResetError, Receiver, Sender, Session
from plugin_sdk.spawn import PluginProcess

from ..result import describe_exception
from ._errors import ExecError, PluginCrashed, PluginProtocolError
from ._table import CallTable, NeverMade, entry_weight
from ._tap import TapStream

__all__ = ["Done", "Live"]

log = logging.getLogger("chanrouter.exec")

Done = Callable[[Reply | None, str | None, bool], None]
"""A call's completion: ``done(reply, error, timed_out)``, exactly one of them set.

``error`` is the text of the :class:`ExecError` the call failed with
(:func:`router.result.describe_exception`). A completion that wants the exception
itself (the waiter of :meth:`Live.call`) also has a ``fail(error)`` method, called
instead.
"""


_BATCH_BYTES = 65536
"""About how much message data one ``call`` request carries at most.

A plugin can answer nothing in a batch until all of it has arrived, and a batch over
the plugin's frame limit would be encoded only to be refused and split: so big
messages go out a few at a time (docs/PROTOCOL.md asks batches to stay small).
"""


_EAGER_CALLS = 16
"""Calls in the outbox at which the submitting task sends them itself, at once.

The flusher sends what a scheduling round queued only once the round is over; in a
round that completes a batch of answers, that is the next batch whole, so the router
and its plugin would take turns: one working on a batch while the other waits for it.
Sent in runs of 16 as they are made, the plugin starts on the first while the router
makes the rest (``python -m bench.profile_router exec1``: about 70k to 90k messages/s
with 64 in flight). Batches too big for one request are left to the flusher, which
cuts them (bigger messages were in several requests already).
"""


def _batches(entries: list[list[Any]]) -> list[list[list[Any]]]:
    """``entries`` cut into runs of at most about :data:`_BATCH_BYTES` (one at least)."""
    batches: list[list[list[Any]]] = []
    batch: list[list[Any]] = []
    size = 0
    for entry in entries:
        weight = entry_weight(entry)
        if batch and size + weight > _BATCH_BYTES:
            batches.append(batch)
            batch, size = [], 0
        batch.append(entry)
        size += weight
    if batch:
        batches.append(batch)
    return batches


class _Waiter:
    """What :meth:`Live.call` waits on: the outcome of one submitted call."""

    __slots__ = ("error", "event", "reply")

    def __init__(self) -> None:
        self.event = trio.Event()
        self.reply: Reply | None = None
        self.error: ExecError | None = None

    def __call__(self, reply: Reply | None, error: str | None, timed_out: bool) -> None:
        # Only answers come this way (a call() is never given a deadline): failures
        # come through fail(), with the exception call() raises.
        self.reply = reply
        self.event.set()

    def fail(self, error: ExecError) -> None:
        self.error = error
        self.event.set()


def _fail(done: Done, error: ExecError) -> None:
    """Complete a call with ``error``: the exception itself to a completion that wants it."""
    fail = getattr(done, "fail", None)
    if fail is not None:
        fail(error)
    else:
        done(None, describe_exception(error), False)


class Live:
    """A spawned plugin process and, once it handshook, its session and channels."""

    def __init__(self, process: PluginProcess, label: str) -> None:
        self.process = process
        self.label = label
        """How log lines and errors name this plugin (its name or command)."""
        self.tap = TapStream(process.from_plugin)
        self.stderr_tail: deque[str] = deque(maxlen=10)
        self.session: Session | None = None
        self.control: Receiver | None = None
        """The channel the plugin opened for its handshake; its answers come on it."""
        self.calls: Sender | None = None
        self.info: PluginInfo | None = None
        self.cancels = False
        """The plugin named the ``cancel`` feature: calls given up on are cancelled."""
        self.death: str | None = None
        """Why this incarnation ended abnormally; None while healthy or stopping cleanly."""
        self.wake = trio.Event()
        """Set when the supervisor must act: a death, or a stop/restart request."""
        self.woken = False
        """:attr:`wake` is set (read on every call: a plain attribute, not a method)."""
        self.stop_requested = False
        self.ready = False
        """The handshake completed."""
        self.start_scope = trio.CancelScope()
        """Wraps the start (spawn to handshake): a death or stop before ready cancels it."""
        self.suspect = trio.Event()
        """Set when a call was given up (timed out): the hang check pings."""
        self.outputs_open = 2
        """stdout and stderr forwarders still running."""
        self.outputs_done = trio.Event()
        self._table: CallTable[Done] = CallTable(1)
        self._protocol_death = False
        self._flush_lot = ParkingLot()
        self._flush_armed = False
        """The flusher has been woken or is sending: new calls queue for it (though once
        :data:`_EAGER_CALLS` are queued they go at once, unless it is sending)."""
        self._flushing = False
        """The flusher is sending (it took the outbox): nothing may overtake it."""
        self._timer = trio.CancelScope()
        """The timer task's sleep: its deadline is the earliest call expiry."""
        self._timer_at = math.inf
        """:attr:`_timer`'s deadline (a plain attribute: the scope's is a property, and
        every call compares its expiry with it)."""
        self._idle_lot = ParkingLot()
        self._control_ended = False
        self._abandoned: list[int] = []
        """Calls whose callers stopped waiting: the flusher gives them up."""

    @property
    def inflight(self) -> int:
        """Calls submitted and not yet completed."""
        return len(self._table.pending)

    def serve(self, nursery: trio.Nursery) -> None:
        """Start serving calls (after the handshake; ``info``, ``control``, ``calls`` set)."""
        assert self.info is not None and self.control is not None and self.calls is not None
        self._table = CallTable(self.info.concurrency, cancels=self.cancels)
        nursery.start_soon(self._flusher, name=f"calls to plugin {self.label}")
        nursery.start_soon(self._pump, name=f"answers from plugin {self.label}")
        nursery.start_soon(self._expire, name=f"call timeouts of plugin {self.label}")

    # -- calls --------------------------------------------------------------------------

    def submit(self, message: Message, expires: float, done: Done) -> int:
        """Start a call; ``done`` runs later, exactly once. Return the call id.

        Only for a ready incarnation that is not dying or stopping (the handle checks).
        A call to an idle plugin goes out at once (the lowest latency one at a time);
        otherwise it waits for the flusher, which sends every call queued in this
        scheduling round in one ``call`` request, unless :data:`_EAGER_CALLS` are
        queued first: they go at once, together (so the plugin starts on them).
        """
        table = self._table
        call_id = table.add(message, done, expires)
        if expires < self._timer_at:
            # Moving the sleeping timer's deadline wakes nobody (a task switch per call,
            # one at a time, was a fifth of a round trip's cost).
            self._timer.deadline = self._timer_at = expires
        outbox = table.outbox
        if not outbox:
            return call_id
        eager = len(outbox) >= _EAGER_CALLS and table.outbox_weight <= _BATCH_BYTES
        if self._flush_armed and (not eager or self._flushing):
            return call_id
        if (eager or table.unanswered == 1) and not self._control_ended:
            calls = self.calls
            assert calls is not None
            entries = table.outbox
            depth = CALLS_NESTING + table.outbox_nesting
            try:
                calls.send_now(calls_to_wire(entries), depth=depth)
            except Exception:
                pass  # no credit, too large, session gone: the flusher sorts it out
            else:
                table.sent(table.take())
                return call_id
        if not self._flush_armed:
            self._flush_armed = True
            self._flush_lot.unpark_all()
        return call_id

    async def call(self, message: Message) -> Reply:
        """Send ``message`` and wait for the plugin's reply (see ExecHandle.call).

        Cancelling the wait (the engine's per-call timeout) gives the call up: its late
        answer is ignored, the hang check pings the plugin, and a plugin with the
        ``cancel`` feature is told.
        """
        if self.death is not None or not self.ready or self.woken:
            raise self._crashed()
        waiter = _Waiter()
        call_id = self.submit(message, math.inf, waiter)
        try:
            await waiter.event.wait()
        except BaseException:
            if not waiter.event.is_set():
                self._give_up(call_id)
            raise
        if waiter.error is not None:
            raise waiter.error
        assert waiter.reply is not None
        return waiter.reply

    def abandon(self, call_id: int) -> None:
        """The caller of ``call_id`` stopped waiting: give the call up soon, without
        calling its ``done``. Only notes it and wakes the flusher, so it may run where
        nothing else may (inside trio's delivery of a cancel, outside any task)."""
        self._abandoned.append(call_id)
        if not self._flush_armed:
            self._flush_armed = True
            self._flush_lot.unpark_all()

    def _give_up(self, call_id: int) -> None:
        if self._table.give_up(call_id, trio.current_time()) is not None:
            # Maybe slow, maybe hung: the hang check finds out.
            self.suspect.set()
            self._settled()
            self._kick()  # a cancel to send
            self._check_wedged()

    def _check_wedged(self) -> None:
        """Kill a plugin whose every place is held by work nobody waits for.

        A plugin that answers pings but never finishes the calls it was given (an
        async handler waiting forever) would otherwise keep its places, and every
        later call would time out waiting for one, for as long as it runs.
        """
        table = self._table
        assert self.info is not None
        if self.death is None and table.wedged(self.info.timeout):
            held = table.given_up_held
            if held == 1:
                places, calls, wanted = "its one call place is", "a call", "it"
            else:
                places, calls, wanted = f"all {held} of its call places are", "calls", "one"
            self.die(
                f"wedged: {places} held by {calls} given up on, still unfinished"
                f" {self.info.timeout:g}s later when a newer call timed out waiting for {wanted}"
            )

    def _complete(self, done: Done, reply: Reply | None, timed_out: bool) -> None:
        try:
            done(reply, None, timed_out)
        except Exception:
            # A caller's bug must not stop the task that completes everyone else's calls.
            log.exception("completing a call to plugin %s failed", self.label)

    def _complete_failed(self, done: Done, error: ExecError) -> None:
        try:
            _fail(done, error)
        except Exception:
            log.exception("completing a call to plugin %s failed", self.label)

    def _settled(self) -> None:
        if not self._table.pending and self._idle_lot:
            self._idle_lot.unpark_all()

    async def wait_idle(self) -> None:
        """Wait until no call is waited for."""
        while self._table.pending:
            await self._idle_lot.park()

    # -- the three tasks ----------------------------------------------------------------

    async def _flusher(self) -> None:
        table = self._table
        while True:
            if self._abandoned:
                abandoned, self._abandoned = self._abandoned, []
                for call_id in abandoned:
                    self._give_up(call_id)
            if not table.outbox and not table.cancels_ready:
                self._flush_armed = False
                await self._flush_lot.park()
                continue
            self._flush_armed = True
            self._flushing = True
            if not table.outbox:
                pass  # only cancels to send
            elif table.outbox_weight <= _BATCH_BYTES:
                # The usual round: one batch, whose depth the table knows.
                depth = CALLS_NESTING + table.outbox_nesting
                await self._send(table.take(), depth)
            else:
                for batch in _batches(table.take()):
                    await self._send(batch)
            cancelled = table.take_cancels()  # after the calls: a cancel never overtakes one
            if cancelled:
                await self._send_cancel(cancelled)
            self._flushing = False
            if self._control_ended and table.in_flight:
                self._die_control_closed()

    async def _request(self, request: dict[str, Any], depth: int | None = None) -> bool:
        """Send ``request`` on the calls channel (no scheduling round while there is
        credit); False if the session ended or is stopping. Other errors propagate.
        ``depth``: how deep ``request`` nests, if known (else the session walks it)."""
        calls = self.calls
        assert calls is not None
        try:
            try:
                # Already a batch of everything this round made: written at once.
                calls.send_now(request, depth=depth)
            except trio.WouldBlock:
                await calls.send(request)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return False
        return True

    async def _send(self, entries: list[list[object]], depth: int | None = None) -> None:
        """Send ``entries`` as one request (or, when too large for one frame, several).

        ``depth``: how deep their request nests, if known (the halves of a request
        refused as a whole are walked: their depth may be less)."""
        try:
            if not await self._request(calls_to_wire(entries), depth):
                return  # the supervisor ends these calls
        except Exception as exc:
            if len(entries) > 1:  # most likely over the peer's frame size: halve it
                half = len(entries) // 2
                await self._send(entries[:half])
                await self._send(entries[half:])
                return
            error = ExecError(f"plugin {self.label}: could not send the call: {exc}")
            for done in self._table.unsendable(entries):
                self._complete_failed(done, error)
            self._settled()
            return
        self._table.sent(entries)

    async def _send_cancel(self, ids: list[int]) -> None:
        try:
            await self._request(cancel_to_wire(ids))  # an ended session has none to cancel
        except Exception as exc:
            # Only a cancel is lost: the calls still hold their places until answered.
            log.warning("plugin %s: could not cancel calls %s: %s", self.label, ids, exc)

    async def _pump(self) -> None:
        control = self.control
        assert control is not None
        # Answers are absorbed as the session decodes them (no task wakes per batch);
        # this task only learns how the control channel ends.
        control.listen(self._on_answers)
        while self.death is None:
            try:
                payload = await control.receive()
            except (trio.EndOfChannel, ChannelResetError):
                self._control_ended = True
                if self._table.in_flight:
                    self._die_control_closed()
                return  # else the plugin is going away: its exit tells the rest
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return  # the session ended: the supervisor finds out why
            self._on_answers(payload)  # not reached while listening; kept for safety

    def _on_answers(self, payload: object) -> None:
        """The control channel's listener: runs in the session's reading task."""
        if self.death is not None:
            return
        try:
            self._absorb(payload)
        except Exception:  # never into the session's reading: that would end it
            log.exception("plugin %s: handling its answers failed", self.label)

    def _die_control_closed(self) -> None:
        self.die(
            f"closed its control channel with {self._table.in_flight} calls unanswered",
            protocol=True,
        )

    def _absorb(self, payload: object) -> None:
        """Complete the calls a ``replies`` message answers (or die of it)."""
        try:
            answers = parse_answers(payload)
        except AppProtocolError as exc:
            self.die(f"sent a malformed answer: {exc}", protocol=True)
            return
        table = self._table
        for call_id, reply in answers:
            try:
                done = table.resolve(call_id)
            except NeverMade as exc:
                self.die(str(exc), protocol=True)
                return
            if done is not None:
                try:  # _complete, inline: once per answer
                    done(reply, None, False)
                except Exception:
                    # A caller's bug must not stop the completion of everyone else's calls.
                    log.exception("completing a call to plugin %s failed", self.label)
        self._kick()
        self._settled()

    def _kick(self) -> None:
        """Wake the flusher if there are calls (let in by answers) or cancels to send."""
        table = self._table
        # ``to_cancel`` first: nearly always empty, and cheaper to read than the property.
        ready = table.outbox or (table.to_cancel and table.cancels_ready)
        if ready and not self._flush_armed:
            self._flush_armed = True
            self._flush_lot.unpark_all()

    async def _expire(self) -> None:
        table = self._table
        while True:
            expired = table.expire(trio.current_time())
            if expired:
                self.suspect.set()
                for done in expired:
                    self._complete(done, None, True)
                self._settled()
                self._kick()  # cancels to send
                self._check_wedged()
            # A fresh scope per wake: a scope whose deadline passed stays cancelled.
            self._timer_at = table.next_deadline()
            self._timer = trio.CancelScope(deadline=self._timer_at)
            with self._timer:
                await trio.sleep_forever()

    # -- the end ------------------------------------------------------------------------

    def _crashed(self) -> PluginCrashed:
        kind = PluginProtocolError if self._protocol_death else PluginCrashed
        return kind(f"plugin {self.label} {self.death or 'went away'}")

    def die(self, reason: str, *, protocol: bool = False) -> None:
        """End this incarnation: fail calls waited for, wake the supervisor.

        The first reason wins. ``protocol`` says the plugin broke the protocol: its calls
        fail with :class:`PluginProtocolError` rather than :class:`PluginCrashed`.
        """
        if self.death is None:
            self.death = reason
            self._protocol_death = protocol
            self._drain()
        if not self.ready:
            self.start_scope.cancel()
        self._wake()  # before the callbacks: a retry must not reach this incarnation
        self._fail_all()

    def end(self) -> None:
        """The incarnation is over (reaped): fail any call still waited for."""
        self._wake()
        self._drain()
        self._fail_all()

    def _wake(self) -> None:
        self.woken = True
        self.wake.set()

    def _drain(self) -> None:
        """Take the answers that arrived and were not read yet: they are answers still."""
        control = self.control
        if control is None or not self.ready:
            return
        while control.buffered and self._table.pending:
            self._absorb(control.receive_nowait())

    def _fail_all(self) -> None:
        for done in self._table.clear():
            # One exception per call: each caller's raise adds its own traceback.
            self._complete_failed(done, self._crashed())
        self._settled()

    def request_stop(self) -> None:
        """Ask the supervisor to end this incarnation gracefully (calls in flight finish)."""
        self.stop_requested = True
        if not self.ready:
            self.start_scope.cancel()
        self._wake()

    async def ping(self, timeout: float) -> bool:
        """Whether the plugin answers a ping within ``timeout`` seconds."""
        if self.session is None or self.calls is None:
            return False
        receiver, ref = self.session.pipe()
        try:
            with trio.move_on_after(timeout):
                await self.calls.send(Ping(ref).to_wire())
                check_pong(await receiver.receive())
                return True
        except AppProtocolError as exc:
            self.die(f"answered a ping with {exc}", protocol=True)
        except (trio.BrokenResourceError, trio.EndOfChannel):
            pass
        finally:
            with trio.CancelScope(shield=True):
                await receiver.aclose()
        return False
