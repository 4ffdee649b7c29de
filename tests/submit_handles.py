"""Handles that take *submitted* calls (the engine's callback path), for engine tests.

:class:`SubmitHandle` acts out a :class:`routing_model.ScriptedPlugin` the way a
subprocess handle does: ``submit`` queues the call and returns at once; a system task
answers everything queued at once, optionally in reverse order (answers may arrive in
any order), and gives calls up at their ``expires`` time. ``held`` keeps answers back
until :meth:`SubmitHandle.release` (to have inputs waiting on it). The abandon function
``submit`` returns only records the call's message id (a handle may ignore it).
:class:`SyncHandle` answers inline through ``call_now``, like an in-process plugin
with a plain function handler; :class:`BareSyncHandle` likewise, but hands a lone
continue message over bare (without its reason), as ``Plugin.answer_now`` does.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import trio
from routing_model import ScriptedPlugin, answer

from plugin_sdk import Message, PluginInfo, Reply, Verdict

Done = Callable[[Reply | None, str | None, bool], None]


class _Scripted:
    def __init__(self, plugin: ScriptedPlugin) -> None:
        self.plugin = plugin
        self._tries: dict[str, int] = {}
        self.seen: list[str] = []
        """Ids of the messages handed to this plugin, in the order it got them."""

    @property
    def info(self) -> PluginInfo:
        """The scripted plugin's info."""
        return self.plugin.info

    def answer(self, message: Message) -> Reply | Exception:
        self.seen.append(message.id)
        attempt = self._tries[message.id] = self._tries.get(message.id, 0) + 1
        return answer(self.plugin, message, attempt)


class SubmitHandle(_Scripted):
    """A handle with ``submit``: answers in batches from its own task."""

    def __init__(self, plugin: ScriptedPlugin, *, reverse: bool = False, held: bool = False):
        super().__init__(plugin)
        self.reverse = reverse
        self.held = held
        self.submitted = 0
        self.abandoned: list[str] = []
        """Ids of the messages whose calls the engine abandoned, in order."""
        self.in_flight = 0
        self.most_in_flight = 0
        self._queue: list[tuple[Message, float, Done]] = []
        self._wake = trio.Event()
        self._released = trio.Event()
        self._stopped = False

    async def start(self) -> None:
        """Start the answering task (a system task: start() has no nursery)."""
        trio.lowlevel.spawn_system_task(self._serve)

    async def stop(self) -> None:
        """Fail whatever is still queued, as a plugin going away would."""
        self._stopped = True
        queue, self._queue = self._queue, []
        for _, _, done in queue:
            self._finish(done, None, f"{self.info.name} stopped", False)
        self._wake.set()

    def release(self) -> None:
        """Let held answers go."""
        self.held = False
        self._wake.set()
        self._released.set()

    def submit(self, message: Message, expires: float, done: Done) -> Callable[[], None]:
        """Queue a call; it is answered (or given up) later, from the answering task."""
        self.submitted += 1
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        self._queue.append((message, expires, done))
        self._wake.set()
        return lambda: self.abandoned.append(message.id)

    async def call(self, message: Message) -> Reply:
        """The awaited form (the engine uses it in fan-out branches and ``route()``)."""
        await trio.lowlevel.checkpoint()
        while self.held:
            await self._released.wait()
        out = self.answer(message)
        if isinstance(out, Exception):
            raise out
        return out

    def _finish(self, done: Done, *outcome: object) -> None:
        self.in_flight -= 1
        done(*outcome)  # type: ignore[arg-type]

    async def _serve(self) -> None:
        while True:
            if self._stopped:
                return
            now = trio.current_time()
            expired = [q for q in self._queue if q[1] <= now]
            for item in expired:
                self._queue.remove(item)
                self._finish(item[2], None, None, True)
            if self._queue and not self.held:
                batch, self._queue = self._queue, []
                for message, _, done in reversed(batch) if self.reverse else batch:
                    out = self.answer(message)
                    if isinstance(out, Exception):
                        self._finish(done, None, f"{type(out).__name__}: {out}", False)
                    else:
                        self._finish(done, out, None, False)
                await trio.lowlevel.checkpoint()
                continue
            self._wake = trio.Event()
            deadline = min((q[1] for q in self._queue), default=math.inf)
            with trio.move_on_at(deadline):
                await self._wake.wait()


class SyncHandle(_Scripted):
    """A handle whose ``call_now`` answers synchronously (an in-process plain handler)."""

    async def start(self) -> None:
        """Nothing to start."""

    async def stop(self) -> None:
        """Nothing to stop."""

    def call_now(self, message: Message) -> Reply:
        """Answer inline, raising what the script raises."""
        out = self.answer(message)
        if isinstance(out, Exception):
            raise out
        return out

    async def call(self, message: Message) -> Reply:
        """The awaited form."""
        out = self.answer(message)
        if isinstance(out, Exception):
            raise out
        return out


class BareSyncHandle(SyncHandle):
    """A :class:`SyncHandle` whose ``call_now`` gives a lone continue message bare, for
    ``replace(message)`` (the reason, the scripts' only other field, is left out)."""

    def call_now(self, message: Message) -> Message | Reply:  # type: ignore[override]
        """Answer inline; a lone continue message as the message alone."""
        out = super().call_now(message)
        if out.verdict is Verdict.CONTINUE and len(out.messages) == 1:
            return out.messages[0]
        return out
