"""The Plugin base class: one API for in-process and subprocess plugins.

The router calls exactly four things on a plugin: :meth:`Plugin.info`,
:meth:`Plugin.start`, :meth:`Plugin.handle` and :meth:`Plugin.stop`. An author
writes handlers marked with :func:`handles` and, optionally, ``configure``,
``start`` and ``stop``; the base class does dispatch, return-value
normalisation, error containment and validation.

Validation is eager: a malformed class fails when it is defined (with
:class:`PluginDefinitionError`), a bad option when the plugin is constructed
(with :class:`OptionError`); nothing waits for the first message.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable
from typing import Any, ClassVar, Final

from ._handlers import Handler, HandlerTable, class_name, collect_handlers
from ._markers import PluginDefinitionError
from ._markers import handles as handles
from ._options import OptionError
from ._outcome import to_reply
from .info import OnError, PluginInfo, PluginInfoError
from .message import Message
from .reply import Reply, Verdict, error, passthrough

__all__ = ["OptionError", "Plugin", "PluginDefinitionError", "handles"]

_PASS: Final = passthrough()
_CONTINUE: Final = Verdict.CONTINUE


def _all_messages(messages: tuple[object, ...]) -> bool:
    """Whether every item is a plain :class:`Message` (the usual reply, checked fast)."""
    for m in messages:  # noqa: SIM110 - a loop costs less than all() over a generator
        if type(m) is not Message:
            return False
    return True


def _build_info(plugin: Plugin | type[Plugin], name: str, accepts: tuple[str, ...]) -> PluginInfo:
    on_error: Any = plugin.on_error
    # An invalid value stays as is: PluginInfo reports it, naming the plugin and field.
    with contextlib.suppress(ValueError):
        on_error = OnError(on_error)
    return PluginInfo(
        name=name,
        accepts=accepts,
        version=str(plugin.version),
        priority=plugin.priority,
        concurrency=plugin.concurrency,
        on_error=on_error,
        max_attempts=plugin.max_attempts,
        timeout=plugin.timeout,
    )


class Plugin:
    """Base class of every chanrouter plugin.

    Class attributes are the defaults of :class:`~plugin_sdk.PluginInfo`; an
    instance may change them (for example from its option in ``configure``).
    Subclass with ``abstract=True`` (``class Base(Plugin, abstract=True)``) for a
    shared base that declares no handlers and cannot be instantiated.
    """

    name: str = ""
    """The plugin's name: required, non-empty, no whitespace."""
    version: str = "0"
    priority: int = 0
    """Higher runs earlier in a pipeline; ties keep registration order."""
    concurrency: int = 1
    """How many messages this plugin handles at once (1 keeps message order)."""
    on_error: OnError = OnError.FAIL
    max_attempts: int = 3
    timeout: float = 10.0

    _handler_table: ClassVar[HandlerTable] = HandlerTable()
    _abstract: ClassVar[bool] = True

    option: str
    """The option string this instance was configured with."""
    log: logging.Logger
    """This instance's logger, ``chanrouter.plugin.<name>``."""

    def __init_subclass__(cls, *, abstract: bool = False, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._abstract = abstract
        cls._handler_table = collect_handlers(cls)
        if abstract:
            return
        if not cls._handler_table.handlers:
            raise PluginDefinitionError(
                f"plugin class {class_name(cls)} declares no handlers: mark at least one"
                " method with @handles(...), or subclass with abstract=True"
            )
        try:
            _build_info(cls, cls.name, cls._handler_table.patterns())
        except PluginInfoError as exc:
            raise PluginDefinitionError(f"plugin class {class_name(cls)}: {exc}") from None

    def __init__(self, option: str = "", *, name: str | None = None) -> None:
        """Configure a plugin instance from its option string.

        ``name`` overrides the class's name, so two instances of one plugin class
        can coexist in a router (``Authz(rules, name="authz-images")``).
        Raises :class:`OptionError` naming the plugin and option if ``configure``
        rejects the option, and :class:`~plugin_sdk.PluginInfoError` if the
        instance's self-description (name, accepts) is invalid.
        """
        cls = type(self)
        if cls._abstract:
            raise PluginDefinitionError(
                f"plugin class {class_name(cls)} is abstract: subclass it and add handlers"
            )
        if name is not None:
            if not isinstance(name, str) or not name or any(c.isspace() for c in name):
                raise PluginInfoError(
                    f"plugin {name!r}: name must be a non-empty string without spaces"
                )
            self.name = name
        self.option = option
        self.log = logging.getLogger(f"chanrouter.plugin.{self.name}")
        try:
            self.configure(option)
        except OptionError as exc:
            raise exc.located(self.name, option) from exc.__cause__
        except ValueError as exc:
            raise OptionError(str(exc), plugin=self.name, option=option) from exc
        self.info()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} option={self.option!r}>"

    def configure(self, option: str) -> None:
        """Parse the option string; raise :class:`OptionError` if it is invalid.

        The default accepts only an empty option: a plugin that takes none
        should say so rather than silently ignore one.
        """
        if option.strip():
            raise OptionError("this plugin takes no option")

    def accepts(self) -> tuple[str, ...]:
        """The message types or globs this instance is routed.

        Defaults to every handler's patterns in declaration order; override it
        to narrow or widen per instance (a message no handler matches passes).
        """
        return type(self)._handler_table.patterns()

    def info(self) -> PluginInfo:
        """This instance's self-description, as the router plans routes with it."""
        return _build_info(self, self.name, tuple(self.accepts()))

    async def start(self) -> None:
        """Hook run once before the first message; the default does nothing."""

    async def stop(self) -> None:
        """Hook run once after the last message; the default does nothing."""

    async def handle(self, message: Message) -> Reply:
        """Dispatch ``message`` to its handler and return the normalised reply.

        Never raises, except for cancellation: a handler exception becomes an
        ERROR reply ``"ExcType: text"`` (logged with its traceback), a bad return
        value an ERROR reply saying what was returned, and a type no handler
        matches passes through.
        """
        handler = type(self)._handler_table.lookup(message.type)
        if handler is None:
            return passthrough()
        try:
            result = handler.function(self, message)
            if hasattr(result, "__await__"):
                result = await result
        except Exception as exc:
            return self._failed(handler, message, exc)
        return self._normalised(handler, message, result)

    def handle_now(self, message: Message) -> Reply | Awaitable[Reply]:
        """Like :meth:`handle`, but without awaiting when the handler is a plain ``def``.

        Returns the very Reply :meth:`handle` would when the handler answered
        synchronously; otherwise (an ``async def`` handler, or a plain one that
        returned an awaitable) an awaitable the caller awaits for that Reply.
        Lets a driver skip the event loop's machinery (a timeout scope, a
        checkpoint) for a call that cannot be interrupted anyway.
        """
        answer = self.answer_now(message)
        if isinstance(answer, Message):
            return Reply(_CONTINUE, (answer,))
        return answer

    def answer_now(self, message: Message) -> Message | Reply | Awaitable[Reply]:
        """Like :meth:`handle_now`, but a handler's one returned :class:`Message` comes
        back as it is, standing for ``replace(that message)``, without a Reply around it.

        The usual answer of an editing handler, and the router's in-process calls take
        it this way: one object fewer per call.
        """
        handler = self._handler_table.dispatch[message.type]
        if handler is None:
            return _PASS
        if handler.is_async:
            return self.handle(message)
        try:
            result = handler.function(self, message)
        except Exception as exc:
            return self._failed(handler, message, exc)
        # The usual answers first, each settled by one type check; the rest (and
        # telling an awaitable from a bad value) in _normalised.
        kind = type(result)
        if kind is Message:
            replacement: Message = result
            return replacement
        if result is None:
            return _PASS
        if kind is Reply:
            reply: Reply = result
            if _all_messages(reply.messages):
                return reply
        if hasattr(result, "__await__"):
            return self._finish(handler, message, result)
        return self._normalised(handler, message, result)

    async def _finish(self, handler: Handler, message: Message, pending: Any) -> Reply:
        """The rest of :meth:`handle_now` for a plain handler that returned an awaitable."""
        try:
            result = await pending
        except Exception as exc:
            return self._failed(handler, message, exc)
        return self._normalised(handler, message, result)

    def _failed(self, handler: Handler, message: Message, exc: Exception) -> Reply:
        self.log.error(
            "%s failed on %s message %s",
            self._where(handler),
            message.type,
            message.id,
            exc_info=exc,
        )
        return error(f"{type(exc).__name__}: {exc}")

    def _normalised(self, handler: Handler, message: Message, result: object) -> Reply:
        # The usual answers first, checked cheaply; anything else goes through
        # to_reply, which needs the handler's name only to explain a bad value.
        if result is None:
            return _PASS
        kind = type(result)
        if kind is Message:
            return Reply(_CONTINUE, (result,))  # type: ignore[arg-type]
        if kind is Reply:
            assert isinstance(result, Reply)
            if _all_messages(result.messages):
                return result
        reply = to_reply(result, where=self._where(handler))
        if reply.verdict is Verdict.ERROR and reply is not result:
            self.log.error("%s on %s message %s", reply.reason, message.type, message.id)
        return reply

    def _where(self, handler: Handler) -> str:
        return f"handler {type(self).__name__}.{handler.method}"
