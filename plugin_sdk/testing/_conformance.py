"""Conformance: spawn any plugin executable over real FD 3/4 and check what it does.

The checks follow docs/PROTOCOL.md's application layer, so they hold a plugin in any
language to the same contract the router relies on:

1. started by hand (without ``CHANROUTER_PLUGIN=1``), it says so and exits 2;
2. started as the router starts it, it completes the handshake within the timeout with
   a valid ``ready`` (a supported ``app`` version, an info the router would accept);
3. it answers a ping with a pong;
4. it answers every call with a valid reply (one message, then CLOSE), the messages you
   give or, by default, an empty-bodied message of each exact type it accepts;
5. with ``concurrency`` above 1, it answers that many calls sent at once;
6. it refuses a request with an unknown op by resetting that reply channel, and goes on;
7. when the calls channel closes and FD 3 reaches EOF, it exits 0 within the timeout.

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
    AppProtocolError,
    Call,
    Fail,
    Ping,
    check_pong,
    parse_handshake,
    parse_reply,
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
            await _converse(process, messages, timeout, report)
            with trio.move_on_after(timeout):
                report.exit_code = await process.wait()
            if report.exit_code is None:
                report.problems.append(f"did not exit within {timeout:g}s after FD 3 closed")
            elif report.exit_code != 0:
                report.problems.append(f"exited with status {report.exit_code} after FD 3 closed")
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
) -> None:
    try:
        async with open_session(
            process.from_plugin, process.to_plugin, Role.INITIATOR, handshake_timeout=timeout
        ) as session:
            info = await _handshake(session, timeout, report)
            if info is None:
                return
            report.info = info
            async with await session.open_sender() as calls:
                await _checks(session, calls, info, messages, timeout, report)
    except SessionError as exc:
        report.problems.append(f"session failed: {exc}")


async def _handshake(
    session: Session, timeout: float, report: ConformanceReport
) -> PluginInfo | None:
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
        return handshake.info
    report.problems.append(f"no handshake within {timeout:g}s")
    return None


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
    calls: Sender,
    info: PluginInfo,
    messages: Sequence[Message],
    timeout: float,
    report: ConformanceReport,
) -> None:
    async def ping(when: str) -> None:
        try:
            check_pong(await _request(session, calls, Ping, timeout))
        except (AppProtocolError, SessionError, trio.TooSlowError) as exc:
            report.problems.append(f"ping {when}: {_describe(exc, timeout)}")

    async def call(message: Message) -> None:
        try:
            answer = await _request(session, calls, lambda ref: Call(message, ref), timeout)
            report.replies.append((message, parse_reply(answer)))
        except (AppProtocolError, SessionError, trio.TooSlowError) as exc:
            report.problems.append(f"call {message.type} ({message.id}): {_describe(exc, timeout)}")

    await ping("after the handshake")
    probes = list(messages) or [
        Message(t, {}) for t in info.accepts if not any(c in t for c in "*?[")
    ]
    for message in probes:
        await call(message)
    if info.concurrency > 1 and probes:
        before = len(report.replies)
        async with trio.open_nursery() as nursery:
            for _ in range(info.concurrency):
                nursery.start_soon(call, probes[0])
        if len(report.replies) - before != info.concurrency:
            report.problems.append(f"did not answer {info.concurrency} calls sent at once")
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


def _describe(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, trio.TooSlowError):
        return f"no answer within {timeout:g}s"
    if isinstance(exc, trio.EndOfChannel):
        return "closed the reply channel without answering"
    return str(exc) or type(exc).__name__
