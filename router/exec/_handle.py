"""ExecHandle: the router's PluginHandle for a plugin that runs as a subprocess.

One supervisor task per handle runs the plugin's incarnations one after another:
spawn, handshake, serve calls until the process dies (or hangs, or breaks the
protocol), then restart after a backoff delay or quarantine it (see
:mod:`._restart`). ``call`` waits for a restart only when it is due before the caller's
deadline; otherwise (and while quarantined) it raises :class:`PluginUnavailable` at
once and the engine's on-error policy decides. ``submit`` is the same with a callback
instead of a wait (the engine's way in: no task and no cancel scope per call); the
calls themselves are :mod:`._live`'s business.

The supervisor runs as a trio *system task*: :class:`~router.handle.PluginHandle`'s
``start()`` takes no nursery, yet the process must be watched from ``start()`` until
``stop()``. The task catches every error it does not handle (logging it), and when the
trio run ends it is cancelled, which kills and reaps the process on the way out.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import shlex
import signal
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Final

import trio

from plugin_sdk import Message, PluginInfo, Reply
from plugin_sdk.app import FEATURE_CANCEL, AppProtocolError, Fail, parse_handshake
from plugin_sdk.session import HandshakeError, Receiver, SessionBroken, open_session
from plugin_sdk.spawn import SpawnError, spawn, split_command
from plugin_sdk.wire import Role

from ..events import EventBus, EventKind
from ..result import describe_exception
from ._errors import ExecError, PluginStartError, PluginUnavailable
from ._live import Live
from ._output import forward_output
from ._restart import CrashHistory, RestartPolicy
from ._state import ExecState

__all__ = ["ExecHandle", "SubmitDone", "describe_exit"]

log = logging.getLogger("chanrouter.exec")

# Read once: an enum member looked up on its class costs a descriptor call each time,
# and every submitted call checks the state.
_READY: Final = ExecState.READY


SubmitDone = Callable[[Reply | None, str | None, bool], None]
"""How :meth:`ExecHandle.submit` reports a call's outcome: ``(reply, error, timed_out)``."""


def describe_exit(code: int) -> str:
    """``exited with status 1`` or ``was killed by SIGKILL``."""
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with status {code}"


@dataclass(frozen=True, slots=True)
class _Ending:
    reason: str
    ready: bool
    """It had completed its handshake."""
    requested: bool = False
    """A stop or restart asked for it: not a crash."""


class _Later:
    """A call submitted while its plugin restarts, for abandoning it: before the call
    goes out, it never does; after, it is given up at the incarnation it went to."""

    __slots__ = ("abandoned", "call_id", "live")

    def __init__(self) -> None:
        self.abandoned = False
        self.live: Live | None = None
        self.call_id = 0

    def sent(self, live: Live, call_id: int) -> None:
        self.live = live
        self.call_id = call_id

    def abandon(self) -> None:
        self.abandoned = True
        if self.live is not None:
            self.live.abandon(self.call_id)


class ExecHandle:
    """A subprocess plugin: ``ExecHandle("my-plugin --flag 'opt'")``.

    ``start()`` spawns the command and waits for its handshake (raising
    :class:`PluginStartError` naming the command on any failure); ``call()`` sends one
    message and returns the plugin's reply; ``stop()`` closes FD 3, waits
    ``stop_timeout`` seconds for the plugin to exit, then SIGTERMs, waits
    ``kill_timeout`` and SIGKILLs.

    ``name`` overrides the name the plugin gives itself (two instances of one plugin).
    ``events`` receives started/crashed/restarted/quarantined/stopped events.
    """

    def __init__(
        self,
        cmd: str | Sequence[str],
        *,
        name: str | None = None,
        handshake_timeout: float = 10.0,
        stop_timeout: float = 5.0,
        kill_timeout: float = 2.0,
        ping_timeout: float = 5.0,
        restart: RestartPolicy | None = None,
        env: Mapping[str, str] | None = None,
        max_line: int = 8192,
        events: EventBus | None = None,
    ) -> None:
        try:
            self._argv = split_command(cmd)
        except SpawnError as exc:
            raise PluginStartError(str(exc)) from None
        self.command: str = cmd if isinstance(cmd, str) else shlex.join(self._argv)
        """The command line as given (for messages and the admin interface)."""
        self._name = name
        self._handshake_timeout = handshake_timeout
        self._stop_timeout = stop_timeout
        self._kill_timeout = kill_timeout
        self._ping_timeout = ping_timeout
        self._policy = restart or RestartPolicy()
        self._history = CrashHistory(self._policy)
        self._env = env
        self._max_line = max_line
        self._events = events
        self._state = ExecState.NEW
        self._changed = trio.Event()
        """Set (and replaced) on every state change: call() waits on it while restarting."""
        self._restart_at: float | None = None
        """When a scheduled restart will spawn (trio time); None when due now or not set."""
        self._info: PluginInfo | None = None
        self._live: Live | None = None
        """The incarnation that is ready for calls."""
        self._current: Live | None = None
        """The incarnation running now, ready or not."""
        self._pid: int | None = None
        self._restarts = 0
        self._last_error = ""
        self._features: tuple[str, ...] = ()
        self._start_error: str | None = None
        self._stop_requested = False
        self._restart_requested = False
        self._wakeup = trio.Event()
        self._first_outcome = trio.Event()
        self._done = trio.Event()

    def __repr__(self) -> str:
        return f"<ExecHandle {self.label} {self._state} pid={self._pid}>"

    # -- what the engine and the admin interface read ---------------------------------

    @property
    def info(self) -> PluginInfo:
        """The plugin's self-description from its handshake (after ``start()``)."""
        if self._info is None:
            raise RuntimeError(
                f"plugin command {self.command!r} has not completed its handshake: "
                "its info is known only after start()"
            )
        return self._info

    @property
    def label(self) -> str:
        """How messages name this plugin: its name once known, else its command."""
        if self._info is not None:
            return repr(self._info.name)
        if self._name is not None:
            return repr(self._name)
        return f"command {self.command!r}"

    @property
    def state(self) -> ExecState:
        """Where the plugin is in its life."""
        live = self._live
        if self._state is ExecState.READY and live is not None and live.wake.is_set():
            # Dead or asked to go, and the supervisor has not run yet: say so already.
            return ExecState.STOPPING if self._stop_requested else ExecState.RESTARTING
        return self._state

    @property
    def pid(self) -> int | None:
        """The running process's pid, if one runs."""
        return self._pid

    @property
    def restarts(self) -> int:
        """How many times the plugin has been restarted (after crashes or by hand)."""
        return self._restarts

    @property
    def last_error(self) -> str:
        """Why the plugin last crashed or failed to start ("" if it never did)."""
        return self._last_error

    @property
    def features(self) -> tuple[str, ...]:
        """The optional requests the plugin named in its latest ``ready`` (such as
        ``cancel``), known to this router or not; empty before its first handshake."""
        return self._features

    def status(self) -> dict[str, Any]:
        """State for the admin interface (msgpack/JSON friendly)."""
        return {
            "kind": "exec",
            "command": self.command,
            "state": str(self.state),
            "pid": self._pid,
            "restarts": self._restarts,
            "last_error": self._last_error,
        }

    # -- PluginHandle -----------------------------------------------------------------

    async def start(self) -> None:
        """Spawn the plugin and wait for its handshake; raise :class:`PluginStartError`."""
        if self._state is not ExecState.NEW:
            raise RuntimeError(f"plugin {self.label} was started already")
        self._set_state(ExecState.STARTING)
        trio.lowlevel.spawn_system_task(self._supervise, name=f"exec plugin {self.command!r}")
        try:
            await self._first_outcome.wait()
        except BaseException:
            self._request_stop()
            raise
        if self._start_error is not None:
            raise PluginStartError(
                f"plugin command {self.command!r} failed to start: {self._start_error}"
            )

    async def call(self, message: Message) -> Reply:
        """Send ``message`` and return the plugin's reply.

        While the plugin restarts after a crash, the call waits for it if the restart
        is due before the caller's deadline (``trio.current_effective_deadline()``: the
        engine's per-call timeout), so a retry reaches the restarted plugin; otherwise,
        and while it is quarantined or stopped, it raises :class:`PluginUnavailable` at
        once. Raises :class:`PluginCrashed` if the plugin dies meanwhile
        (:class:`PluginProtocolError` if it broke the protocol in its answers), and
        :class:`ExecError` if the call cannot be sent at all (larger than the plugin's
        frame limit). A plugin that cannot handle a message answers with an ``error``
        verdict: that is a reply. When the caller gives up (a timeout cancels the call)
        the call is forgotten (its late answer ignored) and the plugin is pinged, and
        killed and restarted if the ping goes unanswered too.
        """
        while True:
            live = self._ready_live()
            if live is not None:
                return await live.call(message)
            refusal = self._refusal(trio.current_effective_deadline())
            if refusal is not None:
                raise refusal
            # Back before the caller's deadline (or no deadline): wait for it; a retry
            # after a crash then reaches the restarted plugin.
            await self._changed.wait()

    def submit(
        self, message: Message, expires: float, done: SubmitDone
    ) -> Callable[[], None] | None:
        """Start a call to the plugin; ``done(reply, error, timed_out)`` runs exactly once,
        later, from a trio task (never inside ``submit``).

        ``expires`` is the trio-clock time at which the call is given up (``math.inf``:
        never); then ``done(None, None, True)``, and the plugin is pinged as when a
        :meth:`call` is cancelled. A crash, a protocol error, a refused call or an
        unavailable plugin: ``done(None, text, False)``, the text being what the engine
        shows for the exception :meth:`call` would raise (``"PluginCrashed: plugin
        'echo' exited with status 3"``). A reply: ``done(reply, None, False)``.

        A ready plugin takes the call at once (no task, no wait). While it restarts, a
        task waits for it if the restart is due before ``expires``, as :meth:`call`
        does; down, quarantined or stopped, a task reports it unavailable.

        The function returned abandons the call (its caller stopped waiting): a call
        sent is given up at once, as at a timeout, and a call waiting for a restart is
        never sent. ``done`` may then not run.
        """
        live = self._live
        if live is not None and self._state is _READY and not live.woken:  # _ready_live
            return partial(live.abandon, live.submit(message, expires, done))
        later = _Later()
        trio.lowlevel.spawn_system_task(
            self._submit_later, message, expires, done, later, name=f"call to {self.label}"
        )
        return later.abandon

    def _ready_live(self) -> Live | None:
        live = self._live
        if live is not None and self._state is _READY and not live.woken:
            return live
        return None

    def _refusal(self, deadline: float) -> PluginUnavailable | None:
        """Why a call with this deadline cannot wait for the plugin (None: it can)."""
        state = self.state
        restart_at = self._restart_at
        if state is ExecState.RESTARTING and (restart_at is None or restart_at < deadline):
            return None
        live = self._live
        last = live.death if live is not None and live.death else self._last_error
        suffix = f" (last error: {last})" if last else ""
        if state is ExecState.RESTARTING and restart_at is not None:
            suffix = f", in {restart_at - trio.current_time():.3g}s{suffix}"
        return PluginUnavailable(f"plugin {self.label} is {state}{suffix}")

    async def _submit_later(
        self,
        message: Message,
        expires: float,
        done: SubmitDone,
        later: _Later,
    ) -> None:
        """:meth:`submit`'s slow path, in a system task: wait for a restart or refuse."""
        live: Live | None = None
        outcome: tuple[ExecError | None, bool] = (
            PluginUnavailable(f"plugin {self.label} is {ExecState.STOPPED}"),
            False,
        )
        try:
            while True:
                if later.abandoned:
                    outcome = (None, True)  # nobody waits for it: it is never sent
                    return
                live = self._ready_live()
                if live is not None:
                    later.sent(live, live.submit(message, expires, done))
                    return
                if trio.current_time() >= expires:
                    outcome = (None, True)
                    return
                refusal = self._refusal(expires)
                if refusal is not None:
                    outcome = (refusal, False)
                    return
                with trio.move_on_at(expires):
                    await self._changed.wait()
        finally:
            if live is None:
                # Also when the trio run ends under it: done runs exactly once.
                error, timed_out = outcome
                try:
                    done(None, None if error is None else describe_exception(error), timed_out)
                except Exception:
                    log.exception("completing a call to plugin %s failed", self.label)

    async def stop(self) -> None:
        """Stop the plugin gracefully (calls in flight finish first); wait until it is gone."""
        if self._state is ExecState.NEW:
            self._set_state(ExecState.STOPPED)
            return
        self._request_stop()
        await self._done.wait()

    # -- operator actions ---------------------------------------------------------------

    async def ping(self) -> bool:
        """Whether the plugin answers a ping within the ping timeout (False while down)."""
        live = self._live
        if live is None or self._state is not ExecState.READY:
            return False
        return await live.ping(self._ping_timeout)

    def restart(self) -> None:
        """Restart the plugin now, lifting a quarantine; calls in flight finish first.

        Returns at once: watch :attr:`state` (or the events) for the outcome.
        """
        if self._state in (ExecState.NEW, ExecState.STOPPING, ExecState.STOPPED):
            raise RuntimeError(f"plugin {self.label} is {self._state}: cannot restart it")
        self._restart_requested = True
        if self._current is not None:
            self._current.request_stop()
        self._wakeup.set()

    # -- the supervisor -------------------------------------------------------------------

    def _set_state(self, state: ExecState) -> None:
        self._state = state
        if state is not ExecState.RESTARTING:
            self._restart_at = None
        changed, self._changed = self._changed, trio.Event()
        changed.set()

    def _request_stop(self) -> None:
        self._stop_requested = True
        if self._state is not ExecState.STOPPED:
            self._set_state(ExecState.STOPPING)
        if self._current is not None:
            self._current.request_stop()
        self._wakeup.set()

    def _emit(self, kind: str, **data: Any) -> None:
        if self._events is not None:
            name = self._info.name if self._info is not None else self._name
            self._events.emit(kind, name, command=self.command, pid=self._pid, **data)

    async def _supervise(self) -> None:
        try:
            await self._supervise_loop()
        except Exception:
            log.exception("supervisor of plugin %s failed", self.label)
            if self._start_error is None and not self._first_outcome.is_set():
                self._start_error = "internal error in the supervisor (see the log)"
        finally:
            self._live = None
            self._pid = None
            self._set_state(ExecState.STOPPED)
            self._first_outcome.set()
            self._done.set()
            self._emit(EventKind.STOPPED)

    async def _supervise_loop(self) -> None:
        first = True
        while not self._stop_requested:
            ending = await self._incarnation(first)
            if first and not ending.ready:
                self._start_error = self._last_error = ending.reason
                return
            first = False
            if self._stop_requested:
                return
            if self._restart_requested:
                log.info("plugin %s restarted by request", self.label)
            else:
                self._last_error = ending.reason
                log.error("plugin %s crashed: %s", self.label, ending.reason)
                delay = self._history.crash(trio.current_time())
                self._emit(EventKind.CRASHED, reason=ending.reason, restart_in=delay)
                if delay is None:
                    self._set_state(ExecState.QUARANTINED)
                    recent = self._history.recent(trio.current_time())
                    log.error(
                        "plugin %s quarantined after %d crashes within %gs; "
                        "it stays down until restarted by hand",
                        self.label,
                        recent,
                        self._policy.window,
                    )
                    self._emit(EventKind.QUARANTINED, reason=ending.reason)
                    await self._wait_for_request(math.inf)
                else:
                    self._set_state(ExecState.RESTARTING)
                    self._restart_at = trio.current_time() + delay
                    log.warning("restarting plugin %s in %gs", self.label, delay)
                    await self._wait_for_request(delay)
            if self._stop_requested:
                return
            if self._restart_requested:
                self._restart_requested = False
                self._history.clear()
            self._restarts += 1

    async def _wait_for_request(self, delay: float) -> None:
        if self._stop_requested or self._restart_requested:
            return
        self._wakeup = trio.Event()
        with trio.move_on_after(delay):
            await self._wakeup.wait()

    async def _incarnation(self, first: bool) -> _Ending:
        """Run one plugin process from spawn to reaping; say how it ended."""
        self._set_state(ExecState.STARTING if first else ExecState.RESTARTING)
        self._restart_at = None
        try:
            process = spawn(self._argv, env=self._env)
        except SpawnError as exc:
            return _Ending(str(exc), ready=False)
        live = Live(process, self.label)
        self._current = live
        self._pid = process.pid
        try:
            async with trio.open_nursery() as nursery:
                for stream, name, level in (
                    (process.stdout, "stdout", logging.INFO),
                    (process.stderr, "stderr", logging.WARNING),
                ):
                    nursery.start_soon(self._forward, live, stream, name, level)
                nursery.start_soon(self._watch_exit, live)
                ending = await self._converse(live, nursery, first)
                await self._reap(live, graceful=live.death is None or not ending.ready)
                # Output ends once the process and its children let go of the pipes; a
                # grandchild holding them must not keep the supervisor here.
                with trio.move_on_after(1.0):
                    await live.outputs_done.wait()
                nursery.cancel_scope.cancel()
        finally:
            live.end()
            if self._live is live:
                self._live = None
            if self._current is live:
                self._current = None
            with trio.CancelScope(shield=True):
                await process.aclose()
            self._pid = None
        if not ending.ready:
            return _Ending(self._explain(ending.reason, live), ready=False)
        return ending

    def _explain(self, reason: str, live: Live) -> str:
        code = live.process.returncode
        if code is not None and live.death is not None and live.death not in reason:
            reason = f"{reason} (it {live.death})"
        if live.stderr_tail:
            tail = " | ".join(list(live.stderr_tail)[-5:])
            if len(tail) > 600:
                tail = "..." + tail[-600:]
            reason += f"; its stderr ended with: {tail}"
        return reason

    async def _forward(
        self,
        live: Live,
        stream: trio.abc.ReceiveStream,
        stream_name: str,
        level: int,
    ) -> None:
        def sink(line_level: int, text: str) -> None:
            if stream_name == "stderr":
                live.stderr_tail.append(text)
            name = self._info.name if self._info is not None else (self._name or "exec")
            logger = logging.getLogger(f"chanrouter.plugin.{name}")
            if logger.isEnabledFor(line_level):
                logger.log(
                    line_level,
                    "[%s pid %d %s] %s",
                    name,
                    live.process.pid,
                    stream_name,
                    text,
                    extra={"plugin": name, "pid": live.process.pid, "stream": stream_name},
                )

        try:
            await forward_output(stream, sink, default_level=level, max_line=self._max_line)
        finally:
            live.outputs_open -= 1
            if not live.outputs_open:
                live.outputs_done.set()

    async def _watch_exit(self, live: Live) -> None:
        code = await live.process.wait()
        live.die(describe_exit(code))

    async def _watch_session(self, live: Live) -> None:
        assert live.session is not None
        await live.session.wait_closed()
        error = live.session.close_reason
        if live.death is not None or live.stop_requested:
            return
        if isinstance(error, SessionBroken):
            live.die(f"broke the protocol: {error}; it sent {live.tap.sample()}")
            return
        # Usually the process exited: give the exit watcher the chance to say how.
        with trio.move_on_after(1.0):
            await live.process.wait()
        live.die("closed its end of the protocol pipe (FD 4)")

    async def _watch_hangs(self, live: Live) -> None:
        while live.death is None and not live.stop_requested:
            await live.suspect.wait()
            live.suspect = trio.Event()
            if live.death is not None or live.stop_requested:
                return
            if not await live.ping(self._ping_timeout) and live.death is None:
                live.die(
                    f"hung: a call was abandoned and a ping got no answer "
                    f"within {self._ping_timeout:g}s"
                )

    async def _converse(self, live: Live, nursery: trio.Nursery, first: bool) -> _Ending:
        """Speak the protocol with one incarnation until it dies or is asked to stop."""
        deadline = trio.current_time() + self._handshake_timeout
        with live.start_scope:
            try:
                async with open_session(
                    live.tap,
                    live.process.to_plugin,
                    Role.INITIATOR,
                    handshake_timeout=self._handshake_timeout,
                    close_timeout=self._stop_timeout,
                ) as session:
                    live.session = session
                    nursery.start_soon(self._watch_session, live)
                    problem = await self._handshake(live, deadline)
                    if problem is not None:
                        return _Ending(problem, ready=False)
                    live.calls = await session.open_sender()
                    live.serve(nursery)
                    self._became_ready(live, first)
                    nursery.start_soon(self._watch_hangs, live)
                    await live.wake.wait()
                    if live.death is not None:
                        # Kill first: a hung plugin would not read our GOAWAY.
                        live.process.kill()
                        return _Ending(live.death, ready=True)
                    # Stop or restart: calls in flight get their answers, then the plugin
                    # sees its calls channel close, runs its stop hook and exits.
                    with trio.move_on_after(self._stop_timeout):
                        await live.wait_idle()
                    await live.calls.aclose()
                    return _Ending("stopped", ready=True, requested=True)
            except HandshakeError as exc:
                if live.death is not None:
                    return _Ending(f"{live.death} before its handshake", ready=False)
                return _Ending(f"failed the session handshake: {exc}", ready=False)
        # Only a death or a stop request before the handshake cancels the start scope.
        if live.death is not None:
            return _Ending(f"{live.death} before its handshake", ready=False)
        return _Ending("stopped before its handshake", ready=False, requested=True)

    async def _handshake(self, live: Live, deadline: float) -> str | None:
        """Read the plugin's ready/fail message; return what is wrong, or None."""
        assert live.session is not None
        payload: object = None
        control: Receiver | None = None
        with trio.move_on_at(deadline) as timer:
            try:
                control = await live.session.accept()
                payload = await control.receive()
            except (trio.BrokenResourceError, trio.EndOfChannel) as exc:
                if live.death is not None:
                    return f"{live.death} before its handshake"
                return f"ended the session before its handshake ({exc})"
        if live.death is not None:
            return f"{live.death} before its handshake"
        if timer.cancelled_caught:
            return f"sent no handshake within {self._handshake_timeout:g}s"
        try:
            handshake = parse_handshake(payload)
        except AppProtocolError as exc:
            return f"sent a bad handshake: {exc}"
        if isinstance(handshake, Fail):
            return f"refused to start: {handshake.error}"
        info = handshake.info
        if self._name is not None:
            info = dataclasses.replace(info, name=self._name)
        if self._info is not None and info.name != self._info.name:
            return f"restarted under another name ({info.name!r})"
        if self._info is not None and info != self._info:
            log.warning(
                "plugin %s restarted with a different self-description; routing keeps the "
                "first one (restart the router to pick up the new one)",
                self.label,
            )
        live.info = info
        live.cancels = FEATURE_CANCEL in handshake.features
        self._features = handshake.features
        live.control = control
        return None

    def _became_ready(self, live: Live, first: bool) -> None:
        assert live.info is not None
        if self._info is None:
            self._info = live.info
        live.label = self.label
        live.ready = True
        self._live = live
        if self._stop_requested:
            live.request_stop()
            return
        self._set_state(ExecState.READY)
        log.info("plugin %s ready (pid %d)", self.label, live.process.pid)
        if first:
            self._first_outcome.set()
            self._emit(EventKind.STARTED)
        else:
            self._emit(EventKind.RESTARTED, restarts=self._restarts)

    async def _reap(self, live: Live, *, graceful: bool) -> None:
        """Wait for the process to exit; escalate to SIGTERM then SIGKILL."""
        process = live.process
        if graceful:
            with trio.move_on_after(self._stop_timeout):
                await process.wait()
            if process.returncode is None:
                log.warning(
                    "plugin %s did not exit within %gs; sending SIGTERM",
                    self.label,
                    self._stop_timeout,
                )
                process.signal(signal.SIGTERM)
                with trio.move_on_after(self._kill_timeout):
                    await process.wait()
        if process.returncode is None:
            process.kill()
        with trio.CancelScope(shield=True):
            await process.wait()
