"""Conformance: spawn any plugin executable over real FD 3/4 and check what it does.

The checks follow docs/PROTOCOL.md's application layer, so they hold a plugin in any
language to the same contract the router relies on:

1. started by hand (without ``CHANROUTER_PLUGIN=1``), it says so and exits 2;
2. started as the router starts it, it completes the handshake within the timeout with
   a valid ``ready`` (a supported ``app`` version, an info the router would accept);
3. it answers a ping with a pong;
4. it answers every call, on its control channel, with a valid answer carrying the
   call's id: the messages you give or, by default, an empty-bodied message of each
   exact type it accepts, one call per batch;
5. with ``concurrency`` above 1, it answers a batch of that many calls, whatever order
   and grouping it answers them in;
6. it refuses a request with an unknown op by resetting that reply channel, and goes on;
7. if it names the ``cancel`` feature, a ``cancel`` of a call it answered already gets no
   second answer, and it goes on;
8. when the calls channel closes and FD 3 reaches EOF, it exits 0 within the timeout.

Throughout, what the router counts as a crash is a problem: a malformed ``replies``
message, an answer to a call never made, the control channel closed with calls
unanswered. After one of those the checks stop and the plugin is killed, as the
router would; an answer given twice is a problem too.

Every failed check becomes a line in :attr:`ConformanceReport.problems`; nothing raises
but :meth:`ConformanceReport.raise_for_problems` (and :func:`assert_conforms`).
"""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import trio

from .._env import PLUGIN_ENV
from ..app import (
    FEATURE_CANCEL,
    AppProtocolError,
    Cancel,
    Fail,
    Ping,
    call_entry,
    calls_to_wire,
    check_pong,
    parse_answers,
    parse_handshake,
)
from ..info import PluginInfo
from ..message import Message
from ..reply import Reply
from ..session import ChannelResetError, Receiver, Sender, Session, SessionError, open_session
from ..spawn import PluginProcess, SpawnError, spawn, split_command
from ..wire import ErrorCode, Role

__all__ = ["ConformanceReport", "assert_conforms", "check_plugin"]

_STDERR_KEEP = 64 << 10  # the tail of the plugin's stderr kept for the report


@dataclass
class ConformanceReport:
    """What :func:`check_plugin` saw: the plugin's info, its replies and any problems."""

    command: str
    info: PluginInfo | None = None
    features: tuple[str, ...] = ()
    """The optional features the plugin named in its ``ready``."""
    replies: list[tuple[Message, Reply]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    exit_code: int | None = None
    stderr: str = ""

    @property
    def ok(self) -> bool:
        """True when every check passed."""
        return not self.problems

    def raise_for_problems(self) -> None:
        """Raise AssertionError listing every problem (with the stderr tail), if any."""
        if self.problems:
            lines = "\n".join(f"  - {p}" for p in self.problems)
            tail = self.stderr.strip()[-2000:]
            raise AssertionError(
                f"plugin {self.command!r} does not conform:\n{lines}"
                + (f"\nits stderr ended with:\n{tail}" if tail else "")
            )


async def check_plugin(
    cmd: str | Sequence[str],
    messages: Sequence[Message] = (),
    *,
    timeout: float = 10.0,
    env: Mapping[str, str] | None = None,
) -> ConformanceReport:
    """Spawn ``cmd`` as the router would and run every conformance check against it.

    ``messages`` are the calls to make (default: one empty-bodied message per exact type
    the plugin accepts); ``timeout`` bounds each step; ``env`` replaces our environment
    for the plugin (``CHANROUTER_PLUGIN=1`` is always added).
    """
    try:
        argv = split_command(cmd)
    except SpawnError as exc:
        return ConformanceReport(str(cmd), problems=[str(exc)])
    report = ConformanceReport(shlex.join(argv))
    await trio.to_thread.run_sync(_check_started_by_hand, argv, env, timeout, report)
    try:
        process = spawn(argv, env=env)
    except SpawnError as exc:
        report.problems.append(str(exc))
        return report
    stderr = bytearray()
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_drain, process.stdout, None)
            nursery.start_soon(_drain, process.stderr, stderr)
            crashed = await _converse(process, messages, timeout, report)
            if not crashed:  # else the router would kill it, as aclose() below does
                with trio.move_on_after(timeout):
                    report.exit_code = await process.wait()
                if report.exit_code is None:
                    report.problems.append(f"did not exit within {timeout:g}s after FD 3 closed")
                elif report.exit_code != 0:
                    report.problems.append(
                        f"exited with status {report.exit_code} after FD 3 closed"
                    )
            nursery.cancel_scope.cancel()
    finally:
        with trio.CancelScope(shield=True):
            await process.aclose()
        report.stderr = stderr.decode(errors="replace")
    return report


def assert_conforms(
    cmd: str | Sequence[str],
    messages: Sequence[Message] = (),
    *,
    timeout: float = 10.0,
    env: Mapping[str, str] | None = None,
) -> ConformanceReport:
    """Run :func:`check_plugin` (from sync code, e.g. a pytest test) and raise on problems."""
    report = trio.run(lambda: check_plugin(cmd, messages, timeout=timeout, env=env))
    report.raise_for_problems()
    return report


def _check_started_by_hand(
    argv: list[str], env: Mapping[str, str] | None, timeout: float, report: ConformanceReport
) -> None:
    by_hand = {k: v for k, v in (os.environ if env is None else env).items() if k != PLUGIN_ENV}
    try:
        proc = subprocess.run(
            argv,
            env=by_hand,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        report.problems.append(f"started by hand, it did not exit within {timeout:g}s")
        return
    except OSError as exc:
        report.problems.append(f"cannot run it: {exc}")
        return
    if proc.returncode != 2:
        report.problems.append(f"started by hand, it exited {proc.returncode} (expected 2)")
    if not proc.stderr.strip():
        report.problems.append("started by hand, it exited without saying why on stderr")


async def _drain(stream: trio.lowlevel.FdStream, keep: bytearray | None) -> None:
    # A plugin blocked on a full stdout/stderr pipe would look hung: always read.
    while chunk := await stream.receive_some(65536):
        if keep is not None:
            keep += chunk
            del keep[:-_STDERR_KEEP]


async def _converse(
    process: PluginProcess,
    messages: Sequence[Message],
    timeout: float,
    report: ConformanceReport,
) -> bool:
    """Run the checks over a session with the plugin; return whether it crashed."""
    crashed = False
    try:
        async with open_session(
            process.from_plugin, process.to_plugin, Role.INITIATOR, handshake_timeout=timeout
        ) as session:
            handshake = await _handshake(session, timeout, report)
            if handshake is None:
                return False
            info, control = handshake
            async with await session.open_sender() as calls, trio.open_nursery() as nursery:
                caller = _Caller(calls, timeout, report)
                nursery.start_soon(caller.read_answers, control)
                await _checks(session, caller, info, messages, timeout, report)
                crashed = caller.crash is not None
                nursery.cancel_scope.cancel()
    except SessionError as exc:
        report.problems.append(f"session failed: {exc}")
    return crashed


async def _handshake(
    session: Session, timeout: float, report: ConformanceReport
) -> tuple[PluginInfo, Receiver] | None:
    with trio.move_on_after(timeout):
        control = await session.accept()
        payload = await control.receive()
        try:
            handshake = parse_handshake(payload)
        except AppProtocolError as exc:
            report.problems.append(f"bad handshake: {exc}")
            return None
        if isinstance(handshake, Fail):
            report.problems.append(f"refused to start: {handshake.error}")
            return None
        report.info = handshake.info
        report.features = handshake.features
        return handshake.info, control
    report.problems.append(f"no handshake within {timeout:g}s")
    return None


class _Crashed(Exception):
    """The plugin did what the router treats as a crash (already in the report)."""


class _Call:
    """One call in flight: its answer, once the answer reader has it."""

    def __init__(self) -> None:
        self.done = trio.Event()
        self.reply: Reply | None = None


class _Caller:
    """The router's half of application layer v2: ids, batches, answers matched by id."""

    def __init__(self, calls: Sender, timeout: float, report: ConformanceReport) -> None:
        self.calls = calls
        self.timeout = timeout
        self.report = report
        self.last_id = 0
        self.in_flight: dict[int, _Call] = {}
        self.answered: set[int] = set()
        self.crash: str | None = None
        self.control_closed = False

    def crashed(self, reason: str) -> None:
        """Record what the router would call a crash; end every call in flight."""
        if self.crash is None:
            self.crash = reason
            self.report.problems.append(reason)
        for call in self.in_flight.values():
            call.done.set()
        self.in_flight.clear()

    async def batch(self, messages: Sequence[Message]) -> list[Reply]:
        """Make the calls as one batch; return their replies in call order.

        Raises :class:`_Crashed` when the plugin crashed (before or meanwhile),
        :class:`trio.TooSlowError` when an answer does not come within the timeout.
        """
        if self.crash is None and self.control_closed:
            self.crashed(f"closed its control channel with {len(messages)} calls unanswered")
        if self.crash is not None:
            raise _Crashed
        ids = range(self.last_id + 1, self.last_id + 1 + len(messages))
        self.last_id += len(messages)
        pending = {call_id: _Call() for call_id in ids}
        self.in_flight.update(pending)
        entries = [call_entry(i, m) for i, m in zip(ids, messages, strict=True)]
        try:
            await self.calls.send(calls_to_wire(entries))
            with trio.fail_after(self.timeout):
                for call in pending.values():
                    await call.done.wait()
        finally:
            for call_id in ids:  # given up: a late answer is ignored, as the router does
                self.in_flight.pop(call_id, None)
        replies = [call.reply for call in pending.values()]
        if any(reply is None for reply in replies):
            raise _Crashed
        return [reply for reply in replies if reply is not None]

    async def read_answers(self, control: Receiver) -> None:
        """Read ``replies`` messages until the control channel ends or the plugin crashes."""
        try:
            async for payload in control:
                try:
                    answers = parse_answers(payload)
                except AppProtocolError as exc:
                    self.crashed(f"sent a malformed answer: {exc}")
                    return
                for call_id, reply in answers:
                    if not 1 <= call_id <= self.last_id:
                        self.crashed(f"answered call {call_id}, which was never made")
                        return
                    if call_id in self.answered:
                        self.report.problems.append(f"answered call {call_id} twice")
                        continue
                    self.answered.add(call_id)
                    call = self.in_flight.pop(call_id, None)
                    if call is not None:
                        call.reply = reply
                        call.done.set()
        except SessionError as exc:
            if self.in_flight:
                self.crashed(f"control channel failed with calls unanswered: {exc}")
            return
        if self.in_flight:
            self.crashed(f"closed its control channel with {len(self.in_flight)} calls unanswered")
        self.control_closed = True


async def _request(session: Session, calls: Sender, request: Any, timeout: float) -> object:
    """Send a request carrying a fresh reply channel; return the one answer."""
    receiver, ref = session.pipe()
    await calls.send(request(ref).to_wire() if callable(request) else {**request, "reply": ref})
    with trio.fail_after(timeout):
        return await _one_answer(receiver)


async def _one_answer(receiver: Receiver) -> object:
    answer = await receiver.receive()
    try:
        extra = await receiver.receive()
    except trio.EndOfChannel:
        return answer
    raise AppProtocolError(f"sent a second answer on one reply channel: {extra!r}")


async def _checks(
    session: Session,
    caller: _Caller,
    info: PluginInfo,
    messages: Sequence[Message],
    timeout: float,
    report: ConformanceReport,
) -> None:
    calls = caller.calls

    async def ping(when: str) -> None:
        try:
            check_pong(await _request(session, calls, Ping, timeout))
        except (AppProtocolError, SessionError, trio.TooSlowError) as exc:
            report.problems.append(f"ping {when}: {_describe(exc, timeout)}")

    async def batch(batch: Sequence[Message], what: str) -> None:
        try:
            replies = await caller.batch(batch)
        except _Crashed:
            return  # the crash is in the report; the router would make no more calls
        except (SessionError, trio.TooSlowError) as exc:
            report.problems.append(f"{what}: {_describe(exc, timeout)}")
            return
        report.replies.extend(zip(batch, replies, strict=True))

    await ping("after the handshake")
    probes = list(messages) or [
        Message(t, {}) for t in info.accepts if not any(c in t for c in "*?[")
    ]
    for message in probes:
        await batch([message], f"call {message.type} ({message.id})")
    if info.concurrency > 1 and probes:
        together = [
            Message(probes[i % len(probes)].type, probes[i % len(probes)].body)
            for i in range(info.concurrency)
        ]
        await batch(together, f"a batch of {info.concurrency} calls")
    if caller.crash is not None:
        return  # the router would kill it now: nothing more to learn
    try:
        answer = await _request(session, calls, {"op": "conformance.unknown-op"}, timeout)
        report.problems.append(f"answered a request with an unknown op: {answer!r}")
    except ChannelResetError as exc:
        if exc.code != ErrorCode.APPLICATION_ERROR:
            report.problems.append(
                f"reset an unknown op with {exc.code.name}, not APPLICATION_ERROR"
            )
    except (AppProtocolError, SessionError, trio.TooSlowError) as exc:
        report.problems.append(f"unknown op: {_describe(exc, timeout)}")
    await ping("after an unknown op")
    if FEATURE_CANCEL in report.features and caller.last_id and caller.crash is None:
        # Every call so far is answered: a second answer would be reported by the
        # answer reader, and a plugin that chokes on the cancel misses the next ping.
        await calls.send(Cancel((caller.last_id,)).to_wire())
        await ping("after a cancel of a call answered already")


def _describe(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, trio.TooSlowError):
        return f"no answer within {timeout:g}s"
    if isinstance(exc, trio.EndOfChannel):
        return "closed the reply channel without answering"
    return str(exc) or type(exc).__name__
