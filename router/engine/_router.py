"""The trio engine: runs the pure routing core over plugin handles.

The routing rules live in :mod:`router.pipeline`; this module makes the calls they
ask for (with each plugin's timeout and concurrency limit), measures them, and feeds
the outcomes back. An input takes one of two paths:

* **Straight** (the common case): an input whose every reply is a pass or a
  same-type replace is a :class:`~router.pipeline.Straight`, and nothing more while
  it lasts. Synchronous in-process calls run inline; a subprocess call is submitted
  with the input itself as its callback (a stream input, :class:`._flow.Flow`) or
  awaited directly (``route()``). No ``Routing``, task, ticket or call record is made.
* **General**: the first reply that needs more (a drop, a fan-out, a derived
  message, a failure, a deadline header, an async handler, a plugin whose turn must
  be waited for) *escalates* the input to a :class:`._job.Job` holding a
  :class:`~router.pipeline.Routing` in the same state, which the rest of this module
  drives: inline in the task routing the input, detached on callbacks for stream
  inputs, and in tasks only where a reply fans out.

Plugin-set edits swap an immutable snapshot (plan + handles). A routing input
holds the snapshot it started with until it finishes, and a removed plugin is
stopped only once no input still holding an older snapshot can call it.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections import deque
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    Awaitable,
    Callable,
    Coroutine,
    Iterable,
    Sequence,
)
from functools import partial
from types import TracebackType
from typing import Any, Final, Self, TypeVar

import trio
from trio.lowlevel import checkpoint_if_cancelled

from plugin_sdk import Message, PluginInfo, Reply, Verdict

from ..handle import PluginHandle
from ..pipeline import (
    DEFAULT_HOP_LIMIT,
    DEFAULT_MAX_MESSAGES,
    Call,
    Plan,
    PlanError,
    Routing,
    Straight,
)
from ..result import Result, describe_exception
from ._calls import (
    DEADLINE,
    DEADLINE_PASSED,
    Attempt,
    await_submitted,
    awaited,
    deadline_passed,
    expiry,
    record,
)
from ._flow import Flow
from ._gate import Ticket
from ._inflight import InFlight
from ._job import Job
from ._snapshot import Slot, Snapshot, as_reply
from ._stats import PluginStats
from ._stream import Pending, Place, Stream, wake_puller

__all__ = ["Router"]

log = logging.getLogger("chanrouter.engine")
T = TypeVar("T")

_CONTINUE: Final = Verdict.CONTINUE


def _known_info(handle: PluginHandle) -> PluginInfo | None:
    """``handle.info`` if it is known before start (in-process plugins), else None."""
    try:
        return handle.info
    except Exception:
        # A subprocess plugin says who it is only in its handshake, during start().
        return None


def _check_names(handles: Sequence[PluginHandle]) -> None:
    """Refuse two handles whose (already known) names collide, naming both."""
    seen: dict[str, PluginHandle] = {}
    for handle in handles:
        info = _known_info(handle)
        if info is None:
            continue
        if info.name in seen:
            raise PlanError(
                f"two plugins are named {info.name!r}: {seen[info.name]!r} and {handle!r}"
            )
        seen[info.name] = handle


def _plan_of(slots: Sequence[Slot]) -> Plan:
    """The plan for started handles, naming both handles on a duplicate name."""
    seen: dict[str, Slot] = {}
    for slot in slots:
        if slot.info.name in seen:
            raise PlanError(
                f"two plugins are named {slot.info.name!r}:"
                f" {seen[slot.info.name].handle!r} and {slot.handle!r}"
            )
        seen[slot.info.name] = slot
    return Plan(slot.info for slot in slots)


async def _start_all(handles: Sequence[PluginHandle], started: list[PluginHandle]) -> None:
    """Start every handle concurrently; ``started`` gets those that did, in order.

    Subprocess plugins take most of their start-up waiting for a process to spawn
    and handshake, so starting them together costs the slowest one, not the sum.
    Each ``start()`` begins only once the previous one has reached its first wait,
    so the plugins still begin in registration order. If any fails, the others
    still finish starting (so each can be stopped cleanly) and the first failure in
    registration order is raised, with any others added to it as notes.
    """
    if len(handles) <= 1:
        for handle in handles:
            await handle.start()
            started.append(handle)
        return
    outcomes: list[BaseException | None] = [None] * len(handles)
    done = [False] * len(handles)

    async def start(index: int, turn: trio.Event, mine: trio.Event) -> None:
        await turn.wait()
        # Set before start() runs: the next task is woken only in a later scheduling
        # round, after this start() has run up to its first wait.
        mine.set()
        try:
            await handles[index].start()
            done[index] = True
        except Exception as exc:
            outcomes[index] = exc

    try:
        async with trio.open_nursery() as nursery:
            turn = trio.Event()
            turn.set()
            for index in range(len(handles)):
                mine = trio.Event()
                nursery.start_soon(start, index, turn, mine)
                turn = mine
    finally:
        started.extend(h for h, ok in zip(handles, done, strict=True) if ok)
    failures = [exc for exc in outcomes if exc is not None]
    if failures:
        first = failures[0]
        for other in failures[1:]:
            first.add_note(f"another plugin also failed to start: {describe_exception(other)}")
        raise first


class Router:
    """Routes messages through a set of plugin handles; use it as ``async with``.

    Entering starts the handles in registration order; leaving stops them in
    reverse order. See :func:`router.open` for the usual way in.
    """

    def __init__(
        self,
        handles: Sequence[PluginHandle],
        *,
        hop_limit: int = DEFAULT_HOP_LIMIT,
        max_in_flight: int = 64,
        max_messages: int = DEFAULT_MAX_MESSAGES,
    ) -> None:
        if hop_limit < 1:
            raise ValueError(f"hop_limit must be >= 1, got {hop_limit}")
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be >= 1, got {max_in_flight}")
        if max_messages < 1:
            raise ValueError(f"max_messages must be >= 1, got {max_messages}")
        self._handles = list(handles)
        _check_names(self._handles)
        self.hop_limit = hop_limit
        self.max_in_flight = max_in_flight
        self.max_messages = max_messages
        # Empty until started: a subprocess plugin's info is known after its handshake.
        self._current = Snapshot(Plan(), {})
        self._retired: set[Snapshot] = set()
        self._in_flight = InFlight(max_in_flight)
        self._edit_lock = trio.Lock()
        self._nursery: trio.Nursery | None = None
        self._stack: contextlib.AsyncExitStack | None = None
        self._soon: deque[tuple[Callable[[Any], None], Any]] = deque()
        """Continuations of detached inputs, run in order by :meth:`_later`."""
        self._running_soon = False
        self._now: Callable[[], float] = trio.current_time
        """The run's clock, read directly once started (``trio.current_time`` takes two
        more calls to reach it, and detached inputs read it twice a call)."""

    # -- lifetime --------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._stack is not None:
            raise RuntimeError("this router is already running")
        started: list[PluginHandle] = []
        try:
            await _start_all(self._handles, started)
            slots = [Slot.of(handle) for handle in started]
            self._current = Snapshot(_plan_of(slots), {slot.info.name: slot for slot in slots})
        except BaseException as exc:
            await self._stop_handles(reversed(started), after=exc)
            raise
        async with contextlib.AsyncExitStack() as stack:
            self._nursery = await stack.enter_async_context(trio.open_nursery())
            self._stack = stack.pop_all()
        self._now = trio.lowlevel.current_clock().current_time
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        assert self._stack is not None and self._nursery is not None
        stack, self._stack = self._stack, None
        try:
            # Background work is only stream plumbing; its consumers are gone.
            self._nursery.cancel_scope.cancel()
            try:
                return await stack.__aexit__(exc_type, exc, tb)
            except BaseExceptionGroup as group:
                # The nursery wraps the body's own exception; hand it back unwrapped.
                if exc is not None and len(group.exceptions) == 1 and group.exceptions[0] is exc:
                    raise exc from None
                raise
        finally:
            self._nursery = None
            slots = self._current.slots
            handles = [slots[i.name].handle for i in reversed(self._current.plan.registered)]
            await self._stop_handles(handles, after=exc)

    async def _stop_slots(self, slots: Iterable[Slot]) -> None:
        await self._stop_handles([slot.handle for slot in slots])

    async def _stop_handles(
        self, handles: Iterable[PluginHandle], *, after: BaseException | None = None
    ) -> None:
        """Stop each handle, even when an earlier one fails or we are being cancelled.

        A failed stop is raised, unless we are already unwinding from ``after``:
        then it becomes a note on that exception rather than hiding it.
        """
        errors: list[Exception] = []
        with trio.CancelScope(shield=True):
            for handle in handles:
                try:
                    await handle.stop()
                except Exception as exc:
                    errors.append(exc)
        if after is not None:
            for error in errors:
                after.add_note(f"stopping a plugin also failed: {describe_exception(error)}")
        elif errors:
            raise errors[0]

    def _running(self) -> trio.Nursery:
        if self._nursery is None:
            raise RuntimeError("the router is not running: use `async with router.open(...)`")
        return self._nursery

    # -- introspection ---------------------------------------------------------

    @property
    def plan(self) -> Plan:
        """The current plan (what new inputs are routed with)."""
        return self._current.plan

    @property
    def handles(self) -> dict[str, PluginHandle]:
        """The registered handles by name, in pipeline order."""
        slots = self._current.slots
        return {name: slots[name].handle for name in self._current.plan.names}

    def stats(self) -> dict[str, PluginStats]:
        """Counters of each registered plugin, in pipeline order."""
        slots = self._current.slots
        return {name: slots[name].stats for name in self._current.plan.names}

    # -- routing ---------------------------------------------------------------

    async def route(self, message: Message) -> Result:
        """Route one message to its result."""
        self._running()
        limiter = self._in_flight
        await checkpoint_if_cancelled()
        # A free place is taken without a scheduling round: the plugin calls that
        # follow wait anyway, and one at a time every round shows in the latency.
        if not limiter.try_take():
            await limiter.take()
        try:
            snapshot = self._current
            snapshot.active += 1
            pipeline, slots = snapshot.lane(message.type)
            result, waited = await self._route_straight(
                snapshot, Straight(message, pipeline, self.max_messages), slots
            )
        finally:
            limiter.give_back()
        if not waited:
            # Only synchronous in-process calls ran, so nothing yielded: give other tasks
            # and expired deadlines their turn, as every trio async function should
            # (a loop of route() calls must not starve the program or its timeouts).
            await trio.lowlevel.cancel_shielded_checkpoint()
        return result

    async def _route_straight(
        self, snapshot: Snapshot, straight: Straight, slots: tuple[Slot, ...]
    ) -> tuple[Result, bool]:
        """Route one input straight down its pipeline as far as it goes (see Straight),
        then, if it must, as a :class:`Job`; its result, and whether it ever waited.

        Synchronous in-process calls run inline; a submitted call is awaited without
        a task or a cancel scope of its own (the handle enforces its expiry). This
        holds ``snapshot`` (taken by the caller) until the input is done, or hands it
        over to the job it escalates to.
        """
        clock = self._now
        ended: float | None = None  # as in _flow_run: the next synchronous call starts then
        waited = False
        job: Job | None = None
        try:
            while straight.position < len(straight.pipeline):
                slot = slots[straight.position]
                message = straight.message
                headers = message.headers
                gate = slot.gate
                if (
                    (headers and DEADLINE in headers)
                    or gate._queue
                    or gate._active >= gate.capacity
                ):
                    break  # a deadline, or a turn to wait for: the general path's
                now = slot.now
                if now is not None:
                    start = clock() if ended is None else ended
                    try:
                        outcome = now(message)
                    except Exception as exc:
                        ended = clock()
                        job = self._escalate_straight(snapshot, straight)
                        self._complete_escalated(
                            job, slot, None, describe_exception(exc), False, ended - start
                        )
                        break
                    if not isinstance(outcome, (Reply, Message)):
                        # An async handler after all: it takes its place (still free).
                        job = self._escalate_straight(snapshot, straight)
                        (call,) = job.routing.pending()
                        waited = True
                        await self._finish_now(
                            job.routing, slot, call, gate.reserve(), outcome, start
                        )
                        if not job.routing.done:
                            job.first = self._reserve(snapshot, job.routing.pending())
                        break
                    ended = clock()
                    duration = ended - start
                    if not straight.step(outcome, duration):
                        job = self._escalate_straight(snapshot, straight)
                        self._complete_escalated(
                            job, slot, as_reply(outcome), None, False, duration
                        )
                        break
                    stats = slot.stats
                    stats.handled += 1
                    stats.latencies.append(duration)
                    continue
                submit = slot.submit
                if submit is None:
                    break  # a handle with only call(): the general path awaits it
                waited = True
                ended = None
                gate._active += 1  # the free place, without a ticket
                start = clock()
                expires = start + slot.info.timeout  # no deadline header: checked above
                try:
                    reply, error, timed_out = await await_submitted(submit, message, expires)
                finally:
                    gate._active -= 1
                    if gate._queue:
                        gate._admit()
                duration = clock() - start
                if error is None and not timed_out and straight.step(reply, duration):
                    stats = slot.stats
                    stats.handled += 1
                    stats.latencies.append(duration)
                    continue
                job = self._escalate_straight(snapshot, straight)
                self._complete_escalated(job, slot, reply, error, timed_out, duration)
                break
            else:
                self._leave(snapshot)
                return straight.result(), waited
        except BaseException:
            if job is None:
                self._leave(snapshot)
            else:
                self._abandon(job)
            raise
        if job is None:  # the call at this position was not made: the job makes it
            job = self._escalate_straight(snapshot, straight)
            job.first = self._reserve(snapshot, job.routing.pending())
        result = await self._run(job)
        assert result is not None  # only a stream input detaches
        return result, waited or job.waited

    def _escalate_straight(self, snapshot: Snapshot, straight: Straight) -> Job:
        """The :class:`Job` taking over a ``route()`` input at its position."""
        return Job(snapshot, straight.escalate(snapshot.plan, hop_limit=self.hop_limit), [])

    def _complete_escalated(
        self,
        job: Job,
        slot: Slot,
        reply: Reply | None,
        error: str | None,
        timed_out: bool,
        duration: float,
    ) -> None:
        """Report the outcome of the escalated ``job``'s pending call, which Straight could
        not take; its next calls become ``job.first``."""
        routing = job.routing
        (call,) = routing.pending()
        if timed_out:
            # A straight input has no deadline header: the plugin's own timeout ran out.
            error = f"timed out after {slot.info.timeout:g}s"
            slot.stats.record(duration, dropped=False, failed=True, timed_out=True)
        else:
            record(slot, reply, error, duration)
        following = routing.complete_next(
            call.token, reply, duration=duration, error=error, timed_out=timed_out
        )
        job.first = self._reserve(job.snapshot, following)

    async def route_stream(
        self, items: AsyncIterable[Message | Result]
    ) -> AsyncGenerator[Result, None]:
        """Route a stream of inputs, yielding one result per input, in input order.

        A :class:`Result` among the items (an input that failed before routing,
        such as a malformed line) is passed through in its place. At most
        ``max_in_flight`` inputs are pulled but not yet yielded: past that the
        stream stops pulling ``items``. Close the iterator (``contextlib.aclosing``)
        if you stop early, so the background work stops at once.
        """
        nursery = self._running()
        stream = Stream(items)
        scope = trio.CancelScope()
        nursery.start_soon(self._serve_stream, stream, scope)
        order = stream.order
        limiter = self._in_flight
        try:
            while True:
                if order and order[0].outcome is not None:
                    pending = order.popleft()
                    if pending.holds:  # _give_back, inline: once per input
                        pending.holds = False
                        limiter.give_back()
                    outcome = pending.outcome
                    if isinstance(outcome, BaseException):
                        raise outcome
                    assert outcome is not None
                    yield outcome
                elif stream.exhausted and (not order or stream.served):
                    return  # the end, or the router stopped under us
                else:
                    stream.consumer_parked = True
                    try:
                        await stream.consumer.park()
                    finally:
                        stream.consumer_parked = False
        finally:
            stream.closed = True
            stream.finish()
            scope.cancel()
            self._release_held(stream)

    def _give_back(self, pending: Place) -> None:
        if pending.holds:
            pending.holds = False
            self._in_flight.give_back()

    def _release_held(self, stream: Stream) -> None:
        for pending in stream.order:
            self._give_back(pending)

    async def _serve_stream(self, stream: Stream, scope: trio.CancelScope) -> None:
        # A pool of workers rather than a task per input: each pulls an input, routes
        # it inline and pulls again, so a stream costs no task spawn per message. The
        # pool grows only when a worker must await an input and none is idle to pull
        # on (_spare_worker), up to max_in_flight: a stream of straight inputs needs
        # one, and a short stream does not pay for 64.
        try:
            with scope:
                async with trio.open_nursery() as nursery:
                    stream.nursery = nursery
                    stream.workers = 1
                    nursery.start_soon(self._stream_worker, stream)
                while stream.detached:  # their outcomes are still coming
                    await stream.drained.park()
        finally:
            stream.served = True
            stream.finish()
            while stream.handed:  # pulled, never routed (cancelled): free their plugins
                self._abandon(stream.handed.popleft()[1])
            if stream.closed:
                # The consumer left first: places taken since are ours to give back.
                self._release_held(stream)

    async def _stream_worker(self, stream: Stream) -> None:
        while True:
            pulled = await self._pull(stream)
            if pulled is None:
                return
            first, second = pulled
            self._spare_worker(stream)  # this one is about to wait: another pulls on
            if isinstance(first, Job):
                # A straight input that escalated to work that must be awaited: it is
                # awaited here (no task spawned); the next puller was woken.
                assert not isinstance(second, Job)
                await self._work(first, second)
                continue
            assert isinstance(second, Job)
            try:
                outcome: Result | BaseException | None = await self._run(second)
            except Exception as exc:
                outcome = exc
            if outcome is not None:  # None: detached, it settles itself later
                stream.settle(first, outcome)

    def _spare_worker(self, stream: Stream) -> None:
        """Start another worker if none is idle to pull while this one waits."""
        nursery = stream.nursery
        if (
            nursery is not None
            and not stream.pull_lot
            and not stream.exhausted
            and stream.workers < self.max_in_flight
        ):
            stream.workers += 1
            nursery.start_soon(self._stream_worker, stream)

    async def _pull(
        self, stream: Stream
    ) -> tuple[Place, Job] | tuple[Job, Coroutine[Any, Any, None]] | None:
        """Pull and route inputs until one must be awaited; None once there are no more.

        One worker pulls at a time. It routes each straight input (a :class:`Flow`)
        itself, inline, as far as it goes without waiting (to its result, or until it
        waits detached), and pulls the next, so a stream of such inputs costs no task
        switch each, and every input's first plugin call is made (or its place in line
        reserved) before the next input is pulled: plugins see inputs in input order.
        It returns an input that must be awaited: as ``(pending, job)`` when its first
        call must wait (unless an idle worker takes it: see below), or as ``(job,
        work)`` when it escalated to ``work`` on the way.
        """
        while True:
            if stream.handed:
                return stream.handed.popleft()
            if stream.exhausted:
                return None
            if not stream.pulling:
                break
            await stream.pull_lot.park()
        stream.pulling = True
        limiter = self._in_flight
        order = stream.order
        items = stream.items
        try:
            while True:
                if limiter.used < limiter.limit and not limiter._waiters:
                    limiter.used += 1  # limiter.try_take(), inline: once per input
                else:
                    await limiter.take()
                try:
                    item = await anext(items)
                except StopAsyncIteration:
                    limiter.give_back()
                    stream.finish()
                    return None
                except Exception as exc:
                    # The input stream broke: results so far come out first, then this.
                    pending = Pending()
                    order.append(pending)
                    stream.settle(pending, exc)
                    stream.finish()
                    return None
                except BaseException:
                    limiter.give_back()  # cancelled: not in the order, so ours to free
                    raise
                if type(item) is not Message and not isinstance(item, Message):
                    pending = Pending()
                    order.append(pending)
                    if isinstance(item, Result):
                        stream.settle(pending, item)
                        continue
                    stream.settle(
                        pending, TypeError(f"route_stream got {type(item).__name__}, not a Message")
                    )
                    stream.finish()
                    return None
                snapshot = self._current
                snapshot.active += 1
                lane = snapshot.lanes.get(item.type)
                if lane is None:
                    lane = snapshot.lane(item.type)
                flow = Flow(self, stream, snapshot, item, lane)
                order.append(flow)
                # Can its first call be made at once? A synchronous in-process one with a
                # free place, or a submitted one (it then waits detached).
                slots = lane[1]
                if not slots:
                    inline = True
                elif (first := slots[0]).now is None:
                    inline = first.submit is not None
                else:
                    gate = first.gate
                    inline = not gate._queue and gate._active < gate.capacity
                if inline:
                    # Its first call is a synchronous in-process one or a submitted one:
                    # route it here, and pull the next unless it must be awaited.
                    try:
                        work = self._flow_run(flow)
                    except Exception as exc:  # a bug, but never one that loses the input
                        self._flow_settle(flow, exc)
                        continue
                    if work is None:
                        continue  # settled, or waiting detached
                    job, coroutine = work
                    job.waited = True
                    return job, coroutine  # the next puller is woken on the way out
                job = self._escalate(flow)
                job.first = self._reserve(snapshot, job.routing.pending())
                if not stream.pull_lot:
                    return flow, job  # ours to route: no other worker is idle
                # Idle workers wait in line: hand this input to one and pull the next
                # in the same turn. Handing over one input per scheduling round would
                # trickle a freed batch of in-flight slots out one round at a time.
                stream.handed.append((flow, job))
                stream.pull_lot.unpark()
        finally:
            stream.pulling = False
            wake_puller(stream)

    def _abandon(self, job: Job) -> None:
        for _, ticket in job.first:
            ticket.release()
        self._leave(job.snapshot)

    @staticmethod
    def _reserve(snapshot: Snapshot, calls: list[Call]) -> list[tuple[Call, Ticket]]:
        if len(calls) == 1:  # the usual case, without a comprehension's frame
            call = calls[0]
            return [(call, snapshot.slots[call.plugin].gate.reserve())]
        if not calls:  # the end of the usual input's route: no comprehension either
            return []
        return [(call, snapshot.slots[call.plugin].gate.reserve()) for call in calls]

    async def _run(self, job: Job) -> Result | None:
        """Route ``job`` to its result; None if it detached (it settles itself later)."""
        first = job.first
        try:
            if len(first) == 1:  # the usual case, without _drive_all's frame
                call, ticket = first[0]
                await self._drive(job, call, ticket)
            elif first:
                await self._drive_all(job, first)
            if job.detached:
                return None
            return job.routing.result()
        finally:
            if not job.detached:
                self._abandon(job)

    async def _drive_all(self, job: Job, calls: list[tuple[Call, Ticket]]) -> None:
        if len(calls) == 1:
            await self._drive(job, *calls[0])
        elif calls:
            job.waits()
            async with trio.open_nursery() as nursery:
                if job.scope is None:
                    job.scope = nursery.cancel_scope
                for call, ticket in calls[1:]:
                    nursery.start_soon(self._drive, job, call, ticket)
                await self._drive(job, *calls[0])

    async def _drive(self, job: Job, call: Call, ticket: Ticket) -> None:
        """Make ``call``, then the calls it leads to, inline while there is one.

        An in-process plugin whose turn has come is called inline: a synchronous
        handler without a cancel scope or a checkpoint (see :meth:`_call_sync`). A
        stream input whose next call goes to a plugin taking submitted calls detaches
        there (:meth:`_submit`). Other calls go through :meth:`_drive_awaited`, whose
        run of calls shares one timeout scope.
        """
        routing = job.routing
        snapshot = job.snapshot
        slots = snapshot.slots
        clock = self._now
        calls = [(call, ticket)]
        # When the previous call ended, if nothing has yielded since: the next call
        # starts then, which saves a clock read per hop (the bookkeeping between two
        # calls is counted in the second one's duration).
        ended: float | None = None
        while len(calls) == 1:
            call, ticket = calls[0]
            slot = slots[call.plugin]
            now = slot.now
            if not ticket.admitted and slot.submit is not None and self._detachable(job):
                self._wait_turn(job, call, ticket)
                return  # detached: its turn at the gate carries it on
            if now is None:
                submit = slot.submit
                if submit is not None and ticket.admitted and self._detachable(job):
                    following = self._submit(job, slot, call, ticket)
                    if following is None:
                        return  # detached: the call's callback carries on
                    calls = self._reserve(snapshot, following)
                    continue
                elif submit is not None and ticket.admitted:
                    # No cancel scope: the handle gives the call up at ``expires``.
                    job.waits()
                    start = clock()
                    message = call.message
                    expires = min(start + slot.info.timeout, expiry(message, start))
                    if expires <= start:
                        following = deadline_passed(routing, slot, call, ticket)
                    else:
                        try:
                            answered = await await_submitted(submit, message, expires)
                        finally:
                            ticket.release()  # idempotent; frees the turn if cancelled
                        attempt = Attempt(slot, call, ticket, start, expires)
                        following = attempt.complete(routing, *answered, clock())
                    calls = self._reserve(snapshot, following)
                    continue
                else:
                    job.waits()
                    calls = await self._drive_awaited(job, call, ticket)
                    if routing.done:
                        break
                    continue
                ended = None
            elif not ticket.admitted:
                job.waits()
                following = await self._call_now(routing, slot, call, ticket)
                calls = self._reserve(snapshot, following)
                ended = None
                continue
            else:
                start = clock() if ended is None else ended
                outcome = self._call_sync(routing, slot, call, ticket, start, clock)
                if isinstance(outcome, tuple):
                    ended, following = outcome
                    # The fast lane: a lone next call to a synchronous plugin with a free
                    # place runs at once, without a ticket or taking the place: nothing
                    # yields until it has ended, so nobody could take or wait for that
                    # place meanwhile. (The gate's fields are read here directly: this
                    # runs once per hop.)
                    while len(following) == 1:
                        call = following[0]
                        slot = slots[call.plugin]
                        gate = slot.gate
                        if slot.now is None or gate._queue or gate._active >= gate.capacity:
                            break
                        outcome = self._call_sync(routing, slot, call, None, ended, clock)
                        if isinstance(outcome, tuple):
                            ended, following = outcome
                            continue
                        # An async handler after all: it takes its place, as a ticket
                        # (admitted at once: the place is still free).
                        job.waits()
                        ticket = gate.reserve()
                        await self._finish_now(routing, slot, call, ticket, outcome, ended)
                        ended = None
                        following = [] if routing.done else routing.pending()
                        break
                    calls = self._reserve(snapshot, following)
                    continue
                else:
                    # An async handler after all: await it under its timeout.
                    job.waits()
                    await self._finish_now(routing, slot, call, ticket, outcome, start)
                    ended = None
            if routing.done:
                break
            calls = self._reserve(snapshot, routing.pending())
        if routing.done:
            if job.scope is not None:
                job.scope.cancel()  # whatever else is running can no longer matter
            return
        if calls:
            await self._drive_all(job, calls)

    def _call_sync(
        self,
        routing: Routing,
        slot: Slot,
        call: Call,
        ticket: Ticket | None,
        start: float,
        clock: Callable[[], float] = trio.current_time,
    ) -> tuple[float, list[Call]] | Awaitable[Reply]:
        """Call an admitted in-process plugin inline; return when it ended, and what next.

        The synchronous fast path: no cancel scope, no checkpoint (a synchronous
        handler cannot be interrupted by a trio timeout anyway; its duration is still
        measured). If the handler turns out to be async, its awaitable comes back
        instead, with ``ticket`` still held, for :meth:`_finish_now`. ``ticket`` None:
        the place is free and was not taken (the handler ends before anything yields).
        """
        assert slot.now is not None
        message = call.message
        reply: Reply | None = None
        error: str | None = None
        # A message without headers has no deadline: no call to find that out, per hop.
        expired = bool(message.headers) and expiry(message, start) <= start
        if expired:
            error = DEADLINE_PASSED
        else:
            try:
                outcome = slot.now(message)
            except Exception as exc:
                error = describe_exception(exc)
            else:
                if not isinstance(outcome, (Reply, Message)):
                    return outcome
                reply = as_reply(outcome)
        if ticket is not None:
            ticket.release()
        ended = clock()
        duration = ended - start
        if error is None and type(reply) is Reply and reply.verdict is _CONTINUE:
            # record's usual case, inline: this runs once per hop.
            stats = slot.stats
            stats.handled += 1
            stats.latencies.append(duration)
        else:
            record(slot, reply, error, duration)
        following = routing.complete_next(
            call.token, reply, duration=duration, error=error, expired=expired
        )
        return ended, following

    # -- detached inputs -------------------------------------------------------
    #
    # A stream input whose next call goes to a plugin with ``submit`` (a subprocess
    # plugin) does not keep a task waiting for the answer: it *detaches*. The call's
    # callback completes the call and carries the input on (more calls, inline ones,
    # another submit), and settles its result in the stream when routing ends. A
    # hundred inputs waiting on a plugin then cost no task switch each: the handle
    # wakes once for a batch of answers and runs the callbacks in a row. Whatever
    # needs a real wait (a fan-out, an async in-process handler) goes back to a task.

    @staticmethod
    def _detachable(job: Job) -> bool:
        # Only a stream input (it has somewhere to settle) outside a fan-out (whose
        # nursery waits for its branches) may detach.
        return job.stream is not None and job.scope is None

    def _submit(self, job: Job, slot: Slot, call: Call, ticket: Ticket) -> list[Call] | None:
        """Submit ``call`` and detach ``job`` (None); or the next calls if it ended at once.

        It ends at once when the message's deadline has passed.
        """
        assert slot.submit is not None and job.stream is not None
        start = self._now()
        message = call.message
        expires = min(start + slot.info.timeout, expiry(message, start))
        if expires <= start:
            return deadline_passed(job.routing, slot, call, ticket)
        attempt = Attempt(slot, call, ticket, start, expires)
        attempt.job = job
        attempt.router = self
        try:
            slot.submit(message, expires, attempt)  # the attempt is the callback too
        except Exception as exc:  # the handle's bug: a failed call, not a lost message
            return attempt.complete(job.routing, None, describe_exception(exc), False, self._now())
        job.detached = True
        job.stream.detach()
        return None

    def _submitted(self, attempt: Attempt) -> None:
        """A submitted call has its outcome (see ``Attempt.__call__``): carry the input on."""
        job = attempt.job
        assert job is not None and attempt.outcome is not None
        self._reattach(job)
        try:
            following = attempt.complete(job.routing, *attempt.outcome, self._now())
            calls = self._reserve(job.snapshot, following)
        except Exception as exc:  # a bug, but never one that loses the input
            self._settle(job, exc)
            return
        self._carry_on(job, calls)

    def _admitted_now(self, turn: tuple[Job, Call, Ticket]) -> None:
        """A detached input's turn at a plugin's gate has come."""
        job, call, ticket = turn
        self._reattach(job)
        self._carry_on(job, [(call, ticket)])

    def _wait_turn(self, job: Job, call: Call, ticket: Ticket) -> None:
        """Detach ``job`` until ``ticket`` is admitted (no task waits in line)."""
        assert job.stream is not None
        ticket.when_admitted(partial(self._later, self._admitted_now, (job, call, ticket)))
        job.detached = True
        job.stream.detach()

    def _reattach(self, job: Job) -> None:
        assert job.stream is not None
        job.detached = False
        job.stream.reattach()

    def _later(self, step: Callable[[T], None], arg: T) -> None:
        """Run ``step(arg)`` now, or after the step running now (never nested in it).

        Callbacks come from inside other steps (a gate admits the next input inside
        the release of the previous one): queueing them keeps the stack flat and the
        steps in the order they were made.
        """
        self._soon.append((step, arg))
        if self._running_soon:
            return
        self._running_soon = True
        try:
            soon = self._soon
            while soon:
                step, arg = soon.popleft()
                try:
                    step(arg)
                except Exception:  # each step settles its own input; this is a bug
                    log.exception("routing a detached input failed")
        finally:
            self._running_soon = False

    def _carry_on(self, job: Job, calls: list[tuple[Call, Ticket]]) -> None:
        """Route a reattached input on from ``calls`` (reserved: its next calls)."""
        work = self._carry(job, calls)
        if work is not None:
            self._continue_in_task(job, work)

    def _carry(
        self, job: Job, calls: list[tuple[Call, Ticket]]
    ) -> Coroutine[Any, Any, None] | None:
        """Route a detachable input on from ``calls``, inline, as far as it goes.

        None when it settled or waits detached; else the work that must be awaited
        (a fan-out, an async in-process handler), for the caller to await or give to
        a task (:meth:`_continue_in_task`).
        """
        stream = job.stream
        assert stream is not None
        routing = job.routing
        snapshot = job.snapshot
        try:
            while not routing.done:
                if stream.closed or self._nursery is None:
                    # Nobody will take this result: stop here.
                    for _, ticket in calls:
                        ticket.release()
                    self._abandon(job)
                    return None
                if len(calls) != 1:
                    break
                call, ticket = calls[0]
                slot = snapshot.slots[call.plugin]
                if slot.now is None and slot.submit is None:
                    break
                if not ticket.admitted:
                    self._wait_turn(job, call, ticket)
                    return None
                if slot.submit is not None and slot.now is None:
                    following = self._submit(job, slot, call, ticket)
                    if following is None:
                        return None
                else:
                    start = self._now()
                    outcome = self._call_sync(routing, slot, call, ticket, start)
                    if not isinstance(outcome, tuple):
                        return self._await_now(job, slot, call, ticket, outcome, start)
                    following = outcome[1]
                calls = self._reserve(snapshot, following)
            else:
                self._settle(job, None)
                return None
            return self._drive_all(job, calls)
        except Exception as exc:
            self._settle(job, exc)
            return None

    # -- straight inputs ---------------------------------------------------------
    #
    # A stream input starts as a Flow: a Straight (the pure core's common case) and
    # the slots of its pipeline. While every reply is a pass or a replace it needs no
    # other object: synchronous in-process calls run inline, a subprocess call is
    # submitted with the flow itself as its callback, and a turn at a busy gate is
    # waited for by callback too. Anything else (a drop, a fan-out, a failure, a
    # deadline header, an async handler, a handle with only call()) escalates it to a
    # Job at the same point, and the general machinery above takes over.

    def _flow_run(self, flow: Flow) -> tuple[Job, Coroutine[Any, Any, None]] | None:
        """Route ``flow`` on from its position, inline, as far as it goes without waiting.

        None when it settled or waits detached (a submitted call, a turn at a gate);
        else the job it escalated to and the work to await for it.
        """
        stream = flow.stream
        if stream.closed or self._nursery is None:
            self._leave(flow.snapshot)  # nobody will take this result: stop here
            return None
        pipeline = flow.pipeline
        slots = flow.slots
        clock = self._now
        position = flow.position
        # When the previous synchronous call ended: the next starts then (the
        # bookkeeping between two calls is counted in the second one's duration).
        ended: float | None = None
        while position < len(pipeline):
            slot = slots[position]
            message = flow.message
            headers = message.headers
            if headers and DEADLINE in headers:
                return self._escalated(flow)  # deadlines are the general path's
            now = slot.now
            gate = slot.gate
            if now is not None:
                if gate._queue or gate._active >= gate.capacity:
                    return self._escalated(flow)  # its turn must be waited for
                start = clock() if ended is None else ended
                try:
                    reply = now(message)
                except Exception as exc:
                    ended = clock()
                    return self._escalated_answered(
                        flow, slot, None, describe_exception(exc), False, ended - start
                    )
                # The exact type first: the usual answer (a replacement) skips isinstance.
                if type(reply) is not Message and not isinstance(reply, (Reply, Message)):
                    return self._escalated_awaiting(flow, slot, reply, start)
                ended = clock()
                duration = ended - start
                if not flow.step(reply, duration):
                    return self._escalated_answered(
                        flow, slot, as_reply(reply), None, False, duration
                    )
                stats = slot.stats  # record's usual case, inline: once per hop
                stats.handled += 1
                stats.latencies.append(duration)
                position += 1
                continue
            if slot.submit is None:
                return self._escalated(flow)  # a handle with only call(): awaited
            flow.slot = slot
            stream.detached += 1  # stream.detach(), inline: once per subprocess call
            if gate._queue or gate._active >= gate.capacity:
                ticket = gate.reserve()
                if not ticket.admitted:
                    ticket.when_admitted(flow.admitted)
                    flow.ticket = ticket
                    return None  # detached: its turn at the gate carries it on
                flow.ticket = ticket
            else:
                gate._active += 1  # the free place, without a ticket
            return self._flow_submit(flow, slot)
        self._flow_settle(flow, flow.result())
        return None

    def _flow_submit(self, flow: Flow, slot: Slot) -> tuple[Job, Coroutine[Any, Any, None]] | None:
        """Submit the flow's current call (its place at the gate taken, detached);
        what ``_flow_run`` returns, should the handle's ``submit`` raise."""
        assert slot.submit is not None
        start = self._now()
        flow.start = start
        expires = start + slot.info.timeout  # no deadline header: see _flow_run
        try:
            slot.submit(flow.message, expires, flow)
        except Exception as exc:
            return self._flow_submit_failed(flow, slot, exc)
        return None

    def _flow_submit_failed(
        self, flow: Flow, slot: Slot, exc: Exception
    ) -> tuple[Job, Coroutine[Any, Any, None]] | None:
        """The handle's ``submit`` raised: no call is out, so the flow is attached again
        and its place given back, and the call failed with that error (the plugin's
        ``on_error`` decides), as a raising ``call()`` would."""
        flow.stream.reattach()
        flow.leave_gate(slot)
        return self._escalated_answered(flow, slot, None, describe_exception(exc), False, 0.0)

    def _flow_admitted(self, flow: Flow) -> None:
        """A detached flow's turn at its plugin's gate has come: make the call."""
        slot = flow.slot
        assert slot is not None
        if flow.stream.closed or self._nursery is None:
            flow.stream.reattach()
            flow.leave_gate(slot)
            self._leave(flow.snapshot)
            return
        try:
            work = self._flow_submit(flow, slot)
        except Exception as exc:  # a bug, but never one that loses the input
            self._flow_settle(flow, exc)
            return
        if work is not None:
            self._continue_in_task(*work)

    def _flow_settle(self, flow: Flow, outcome: Result | BaseException) -> None:
        """A straight input's routing ended: let go of its snapshot, settle its place."""
        snapshot = flow.snapshot
        snapshot.active -= 1  # _leave, inline: once per input
        if not snapshot.active and snapshot is not self._current:
            self._retire(snapshot)
        stream = flow.stream
        if not stream.closed:
            stream.settle(flow, outcome)

    def _escalate(self, flow: Flow) -> Job:
        """The :class:`Job` taking over ``flow`` at its position (call not made yet).

        The job inherits the flow's hold on its snapshot, its stream and its place in
        the order (the flow itself).
        """
        routing = flow.escalate(flow.snapshot.plan, hop_limit=self.hop_limit)
        return Job(flow.snapshot, routing, [], stream=flow.stream, pending=flow)

    def _escalated(self, flow: Flow) -> tuple[Job, Coroutine[Any, Any, None]] | None:
        """Escalate ``flow`` before its current call and route it on (see :meth:`_carry`)."""
        job = self._escalate(flow)
        work = self._carry(job, self._reserve(job.snapshot, job.routing.pending()))
        return None if work is None else (job, work)

    def _escalated_answered(
        self,
        flow: Flow,
        slot: Slot,
        reply: Reply | None,
        error: str | None,
        timed_out: bool,
        duration: float,
    ) -> tuple[Job, Coroutine[Any, Any, None]] | None:
        """Escalate ``flow`` with its current call's outcome, which Straight could not
        take, and route it on (see :meth:`_carry`)."""
        job = self._escalate(flow)
        self._complete_escalated(job, slot, reply, error, timed_out, duration)
        calls, job.first = job.first, []  # the calls _carry makes are its to release
        work = self._carry(job, calls)
        return None if work is None else (job, work)

    def _escalated_awaiting(
        self, flow: Flow, slot: Slot, pending: Awaitable[Reply], start: float
    ) -> tuple[Job, Coroutine[Any, Any, None]]:
        """Escalate ``flow`` whose in-process call turned out async: await it, then on."""
        job = self._escalate(flow)
        (call,) = job.routing.pending()
        # The place was free when the call was made, and nothing has yielded since.
        ticket = slot.gate.reserve()
        return job, self._await_now(job, slot, call, ticket, pending, start)

    async def _work(self, job: Job, work: Coroutine[Any, Any, None]) -> None:
        """Await an escalated input's ``work`` in this worker, then settle it."""
        try:
            await work
        except Exception as exc:
            self._settle(job, exc)
        except BaseException:
            self._abandon(job)  # the router is stopping
            raise
        else:
            if not job.detached:
                self._settle(job, None)

    async def _await_now(
        self,
        job: Job,
        slot: Slot,
        call: Call,
        ticket: Ticket,
        pending: Awaitable[Reply],
        start: float,
    ) -> None:
        routing = job.routing
        await self._finish_now(routing, slot, call, ticket, pending, start)
        if not routing.done:
            await self._drive_all(job, self._reserve(job.snapshot, routing.pending()))

    def _continue_in_task(self, job: Job, work: Coroutine[Any, Any, None]) -> None:
        """Hand a detached input's next step, which must wait, to a task of its own.

        The task counts as a detachment of its own (the stream is not served while it
        runs), whether or not the input detaches again inside it.
        """
        stream = job.stream
        assert stream is not None
        nursery = self._nursery
        try:
            if nursery is None:
                raise RuntimeError("the router has stopped")
            stream.detach()
            nursery.start_soon(self._task, job, work)
        except RuntimeError:  # stopped, or stopping: the nursery takes no new task
            work.close()
            self._abandon(job)
            if nursery is not None:
                stream.reattach()

    async def _task(self, job: Job, work: Coroutine[Any, Any, None]) -> None:
        stream = job.stream
        assert stream is not None
        try:
            await self._work(job, work)
        finally:
            stream.reattach()

    def _settle(self, job: Job, error: Exception | None) -> None:
        """A detached input's routing ended (or broke with ``error``): settle it."""
        stream = job.stream
        assert stream is not None and job.pending is not None
        outcome: Result | BaseException
        try:
            outcome = job.routing.result() if error is None else error
        except Exception as exc:
            outcome = exc
        finally:
            self._abandon(job)
        if not stream.closed:
            stream.settle(job.pending, outcome)

    async def _call_now(
        self, routing: Routing, slot: Slot, call: Call, ticket: Ticket
    ) -> list[Call]:
        """Call an in-process plugin once its turn comes; return the calls that follow.

        A synchronous handler cannot be interrupted by a trio timeout (it never
        yields), so it runs without a cancel scope: its duration is still measured
        and reported, and one that overran its timeout counts as it would have
        under a scope, as a call that completed. An async handler (``call_now``
        hands back an awaitable) is awaited under its timeout.
        """
        await ticket.enter()  # cancelled, it gives its place in line up
        start = self._now()
        outcome = self._call_sync(routing, slot, call, ticket, start)
        if isinstance(outcome, tuple):
            return outcome[1]
        await self._finish_now(routing, slot, call, ticket, outcome, start)
        return [] if routing.done else routing.pending()

    async def _finish_now(
        self,
        routing: Routing,
        slot: Slot,
        call: Call,
        ticket: Ticket,
        pending: Awaitable[Reply],
        start: float,
    ) -> None:
        """Await an in-process plugin's async answer under its timeout, then report it."""
        expires = expiry(call.message, start)
        try:
            reply, error, timed_out, expired = await awaited(slot, pending, start, expires)
        finally:
            ticket.release()
        duration = self._now() - start
        if timed_out:
            slot.stats.record(duration, dropped=False, failed=True, timed_out=True)
        else:
            record(slot, reply, error, duration)
        routing.complete(
            call.token,
            reply,
            duration=duration,
            error=error,
            timed_out=timed_out,
            expired=expired,
        )

    async def _drive_awaited(
        self, job: Job, call: Call, ticket: Ticket
    ) -> list[tuple[Call, Ticket]]:
        """Make awaited calls inline while there is one; return the calls that follow.

        A run of inline calls shares one cancel scope whose deadline is moved to each
        call's timeout while it runs (entering a scope per call costs more than a
        builtin plugin's whole call). A deadline that passed, whether or not it
        interrupted the call, retires the scope; the next call gets a fresh one.
        The run stops at a call to an in-process plugin, which needs no scope.
        """
        routing = job.routing
        snapshot = job.snapshot
        calls: list[tuple[Call, Ticket]] = []
        slot = snapshot.slots[call.plugin]
        start = expires = math.inf
        with trio.CancelScope() as timer:
            while True:
                try:
                    if not ticket.admitted:
                        timer.deadline = math.inf  # waiting for a turn is not the call
                        await ticket.enter()
                    start = self._now()
                    expires = expiry(call.message, start)
                    # Only this call runs until the next one moves the deadline on:
                    # what happens between calls never yields, so it cannot time out.
                    timer.deadline = min(start + slot.info.timeout, expires)
                    reply: Reply | None = None
                    error: str | None = None
                    expired = expires <= start
                    if expired:
                        error = DEADLINE_PASSED
                    else:
                        try:
                            reply = await slot.handle.call(call.message)
                        except Exception as exc:
                            error = describe_exception(exc)
                finally:
                    ticket.release()
                duration = self._now() - start
                record(slot, reply, error, duration)
                routing.complete(
                    call.token,
                    reply,
                    duration=duration,
                    error=error,
                    expired=expired,
                )
                if routing.done:
                    return []
                calls = self._reserve(snapshot, routing.pending())
                if len(calls) != 1 or timer.cancel_called:
                    return calls
                call, ticket = calls[0]
                slot = snapshot.slots[call.plugin]
                if slot.now is not None:
                    return calls
        # Only a call in progress has a deadline: that call timed out, or the
        # message's own deadline passed during it.
        duration = self._now() - start
        expired = expires < start + slot.info.timeout
        error = DEADLINE_PASSED if expired else f"timed out after {slot.info.timeout:g}s"
        slot.stats.record(duration, dropped=False, failed=True, timed_out=True)
        routing.complete(
            call.token,
            None,
            duration=duration,
            error=error,
            timed_out=True,
            expired=expired,
        )
        if routing.done:
            return []
        return self._reserve(snapshot, routing.pending())

    # -- editing the plugin set ------------------------------------------------

    def _swap(self, new: Snapshot) -> None:
        old, self._current = self._current, new
        if old.active:
            self._retired.add(old)
        else:
            old.drained.set()

    def _leave(self, snapshot: Snapshot) -> None:
        snapshot.active -= 1
        if snapshot.active == 0 and snapshot is not self._current:
            self._retire(snapshot)

    def _retire(self, snapshot: Snapshot) -> None:
        """``snapshot`` is no longer current and its last input is done."""
        self._retired.discard(snapshot)
        snapshot.drained.set()

    async def _drain(self, slot: Slot) -> None:
        """Wait until no routing input can still call ``slot``."""
        for snapshot in list(self._retired):
            if slot in snapshot.slots.values():
                await snapshot.drained.wait()

    async def add(self, handle: PluginHandle, position: int | None = None) -> None:
        """Start ``handle`` and register it at ``position`` in registration order.

        ``None`` appends. Inputs already routing keep their plan; new ones see it.
        """
        self._running()
        async with self._edit_lock:
            info = _known_info(handle)
            if info is not None:
                self._current.plan.with_added(info, position)  # refuse before starting
            await handle.start()
            try:
                slot = Slot.of(handle)
                snapshot = self._current
                plan = snapshot.plan.with_added(slot.info, position)
            except BaseException as exc:
                await self._stop_handles([handle], after=exc)
                raise
            self._swap(Snapshot(plan, {**snapshot.slots, slot.info.name: slot}))

    async def remove(self, name: str) -> PluginHandle:
        """Unregister ``name``; stop it once inputs that may still call it are done."""
        self._running()
        async with self._edit_lock:
            snapshot = self._current
            plan = snapshot.plan.without(name)
            slot = snapshot.slots[name]
            slots = {n: s for n, s in snapshot.slots.items() if n != name}
            self._swap(Snapshot(plan, slots))
            await self._drain(slot)
            await self._stop_slots([slot])
            return slot.handle

    async def replace(self, name: str, handle: PluginHandle) -> PluginHandle:
        """Put ``handle`` in ``name``'s place; the old one stops once it is unused."""
        self._running()
        async with self._edit_lock:
            info = _known_info(handle)
            self._current.plan.with_replaced(name, info or self._current.plan.get(name))
            await handle.start()
            try:
                new = Slot.of(handle)
                snapshot = self._current
                plan = snapshot.plan.with_replaced(name, new.info)
            except BaseException as exc:
                await self._stop_handles([handle], after=exc)
                raise
            old = snapshot.slots[name]
            slots = {n: s for n, s in snapshot.slots.items() if n != name}
            slots[new.info.name] = new
            self._swap(Snapshot(plan, slots))
            await self._drain(old)
            await self._stop_slots([old])
            return old.handle

    def reorder(self, names: Sequence[str]) -> Plan:
        """Set the registration order to ``names`` (each plugin once); returns the new plan.

        Priority still decides first: an order contradicting it is refused.
        """
        snapshot = self._current
        plan = snapshot.plan.reordered(names)
        self._swap(Snapshot(plan, dict(snapshot.slots)))
        return plan
