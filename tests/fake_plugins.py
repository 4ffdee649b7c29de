"""Scripted plugin handles for tests: a table from input to what the plugin does.

A :class:`ScriptedHandle` is a real :class:`router.handle.PluginHandle`. Its
script maps ``(type, body)`` or ``type`` to an action, looked up in that order,
falling back to ``default`` (pass the message on):

* a :class:`~plugin_sdk.Reply` (use plugin_sdk's ``replace``/``emit``/``drop``/``error``);
* a callable ``(Message) -> Reply``;
* an exception instance: the call raises it;
* :data:`HANG`: the call never returns (until cancelled: timeouts);
* ``Delay(seconds, action)``: sleep (use the autojump clock), then act;
* a list of actions: one per attempt (the last repeats), for retry tests.

Handles record what happened to them (``calls``, ``max_active``, start/stop) and
can share one ``log`` list, to check ordering across plugins.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import trio
from routing_model import ScriptedPlugin, answer

from plugin_sdk import Message, OnError, PluginInfo, Reply, passthrough


class _Hang:
    def __repr__(self) -> str:
        return "HANG"


HANG: Final = _Hang()
"""An action: the call never returns on its own."""

PASS: Final = passthrough()
"""An action: pass the message on unchanged (the default)."""


@dataclass(frozen=True)
class Delay:
    """An action: sleep ``seconds``, then do ``then``."""

    seconds: float
    then: Action = PASS


Action = Reply | Callable[[Message], Reply] | BaseException | _Hang | Delay
Script = Mapping[Any, Action | Sequence[Action]]
"""Keys are `(type, body)` tuples or types."""


class ScriptedHandle:
    """A plugin handle that answers from a script and records its calls."""

    def __init__(
        self,
        name: str,
        accepts: Sequence[str] = ("*",),
        script: Script | None = None,
        *,
        default: Action = PASS,
        priority: int = 0,
        concurrency: int = 1,
        on_error: OnError = OnError.FAIL,
        max_attempts: int = 3,
        timeout: float = 10.0,
        log: list[str] | None = None,
    ) -> None:
        self._info = PluginInfo(
            name=name,
            accepts=tuple(accepts),
            priority=priority,
            concurrency=concurrency,
            on_error=on_error,
            max_attempts=max_attempts,
            timeout=timeout,
        )
        self.script: dict[Hashable, Action | Sequence[Action]] = dict(script or {})
        self.default = default
        self.log = log if log is not None else []
        self.calls: list[Message] = []
        """Every message handed to this plugin, in call order."""
        self.active = 0
        self.max_active = 0
        """The most calls this plugin was ever in at once."""
        self.started = False
        self.stopped = False
        self._tries: dict[Hashable, int] = {}

    @property
    def info(self) -> PluginInfo:
        """The plugin's info, built from the constructor arguments."""
        return self._info

    def __repr__(self) -> str:
        return f"ScriptedHandle({self._info.name!r})"

    async def start(self) -> None:
        """Record the start."""
        self.started = True
        self.log.append(f"start {self._info.name}")

    async def stop(self) -> None:
        """Record the stop."""
        self.stopped = True
        self.log.append(f"stop {self._info.name}")

    def _action(self, message: Message) -> Action:
        keys: list[Hashable] = [message.type]
        if isinstance(message.body, Hashable):
            keys.insert(0, (message.type, message.body))
        for key in keys:
            if key in self.script:
                found = self.script[key]
                if isinstance(found, Sequence):
                    tries = self._tries.get(key, 0)
                    self._tries[key] = tries + 1
                    return found[min(tries, len(found) - 1)]
                return found
        return self.default

    async def call(self, message: Message) -> Reply:
        """Act out the script for ``message``."""
        self.calls.append(message)
        self.log.append(f"call {self._info.name} {message.type} {message.body}")
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            return await _act(self._action(message), message)
        finally:
            self.active -= 1


async def _act(action: Action, message: Message) -> Reply:
    if isinstance(action, Delay):
        await trio.sleep(action.seconds)
        return await _act(action.then, message)
    if isinstance(action, _Hang):
        await trio.sleep_forever()
    if isinstance(action, BaseException):
        raise action
    if isinstance(action, Reply):
        await trio.lowlevel.checkpoint()
        return action
    await trio.lowlevel.checkpoint()
    return action(message)


class ModelHandle:
    """A handle acting out a :class:`routing_model.ScriptedPlugin` (for model tests)."""

    def __init__(self, plugin: ScriptedPlugin) -> None:
        self.plugin = plugin
        self._tries: dict[str, int] = {}

    @property
    def info(self) -> PluginInfo:
        """The scripted plugin's info."""
        return self.plugin.info

    async def start(self) -> None:
        """Nothing to start."""

    async def stop(self) -> None:
        """Nothing to stop."""

    async def call(self, message: Message) -> Reply:
        """Answer as the model's script says, counting attempts per message."""
        attempt = self._tries[message.id] = self._tries.get(message.id, 0) + 1
        await trio.lowlevel.checkpoint()
        out = answer(self.plugin, message, attempt)
        if isinstance(out, Exception):
            raise out
        return out


def bodies(messages: Sequence[Message]) -> list[Any]:
    """The bodies of ``messages`` (results are easiest to compare by body)."""
    return [m.body for m in messages]
