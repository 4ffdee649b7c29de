"""Requests the host sends on the calls channel, and the plugin's answers.

Application layer version 2 (docs/PROTOCOL.md, "Application layer: plugins"): calls go
out in batches, ``{"op": "call", "calls": [[id, message], ...]}``, and the plugin answers
in batches on its control channel, ``{"op": "replies", "replies": [[id, verdict,
messages, reason], ...]}``, matched by call id. One frame carries as many calls (or
answers) as were ready together, and no channel is made per call: that is what lets a
subprocess plugin keep up with a stream of small messages.

A host that gave up on calls (they timed out) may say so with ``{"op": "cancel", "ids":
[id, ...]}``, when the plugin named the ``cancel`` feature in its ``ready``: the plugin
stops those handlers and answers each call still unanswered, which frees its place.

Pings keep the libchan reply idiom (a SENDER reference the plugin answers on): they are
rare, and a reply channel of their own keeps them independent of the answers' queue. The
reference is whatever object the session layer makes of it, hence the type parameter.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar

from ..message import Message, MessageFormatError
from ..reply import Reply, Verdict
from ..wire import CONTAINER_TYPES, nesting
from ._errors import AppProtocolError, shown

__all__ = [
    "ANSWERS_NESTING",
    "CALLS_NESTING",
    "CallBatch",
    "Cancel",
    "Ping",
    "Request",
    "UnknownRequest",
    "answer_entry",
    "answers_to_wire",
    "call_entry",
    "calls_to_wire",
    "cancel_to_wire",
    "check_pong",
    "message_nesting",
    "parse_answers",
    "parse_request",
    "pong",
]

R = TypeVar("R")

_VERDICTS = {v.value: v for v in Verdict}
_CONTINUE = Verdict.CONTINUE
_PASS = Reply()


@dataclass(frozen=True, slots=True)
class CallBatch:
    """Calls to handle: ``(call_id, message)`` pairs, in the order they were sent.

    An entry whose message is malformed carries the :class:`AppProtocolError` instead of
    a message: the plugin answers that call with verdict ``error`` and the error's text,
    so the host's call still ends. ``skipped`` says, for the log, which entries had no
    usable call id: nobody can be answered for those, so they are left out.
    """

    calls: tuple[tuple[int, Message | AppProtocolError], ...]
    skipped: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Cancel:
    """The host gave up on the calls ``ids``: stop handling them, answer those unanswered.

    Each call still gets its one answer (an ``error`` saying it was cancelled, or the
    reply its handler made anyway), so that its place at the plugin frees; an id
    already answered, or never received, is ignored.
    """

    ids: tuple[int, ...]

    def to_wire(self) -> dict[str, Any]:
        """The msgpack map sent on the wire."""
        return cancel_to_wire(list(self.ids))


@dataclass(frozen=True, slots=True)
class Ping(Generic[R]):
    """Answer ``{"op": "pong"}`` on ``reply`` at once, even while handlers are busy."""

    reply: R

    def to_wire(self) -> dict[str, Any]:
        """The msgpack map sent on the wire."""
        return {"op": "ping", "reply": self.reply}


@dataclass(frozen=True, slots=True)
class UnknownRequest(Generic[R]):
    """A request with an op this side does not know (a newer host, say).

    The plugin resets ``reply`` (when there is one) with a reason and goes on, so a host
    can probe for optional ops without breaking older plugins.
    """

    op: object
    reply: R | None


Request = CallBatch | Cancel | Ping[R] | UnknownRequest[R]


def _is_call_id(value: object) -> bool:
    return type(value) is int and value >= 1


def parse_request(obj: object, reply_type: type[R]) -> Request[R]:
    """Read a request from the calls channel, or raise :class:`AppProtocolError`.

    ``reply_type`` is the class the session makes of a received SENDER reference; a
    ping's ``reply`` of any other type is an error (the host must give a channel to
    answer on). A ``call`` whose ``calls`` is not a non-empty list is an error; inside
    it, an entry without a usable call id is skipped (there is nobody to answer; the
    batch is an error only when no entry is usable), while an entry whose message is
    malformed is kept with its error (see :class:`CallBatch`). A ``cancel`` whose
    ``ids`` is not a non-empty list of call ids is an error.
    """
    if not isinstance(obj, dict):
        raise AppProtocolError(f"request must be a map with an 'op', got {shown(obj)}")
    op = obj.get("op")
    if op == "call":
        return _parse_calls(obj.get("calls"))
    if op == "cancel":
        ids = obj.get("ids")
        if not (isinstance(ids, list) and ids and all(_is_call_id(i) for i in ids)):
            raise AppProtocolError(
                f"'cancel' request needs a non-empty 'ids' list of integers >= 1, got {shown(ids)}"
            )
        return Cancel(tuple(ids))
    reply = obj.get("reply")
    if op != "ping":
        return UnknownRequest(op, reply if isinstance(reply, reply_type) else None)
    if not isinstance(reply, reply_type):
        raise AppProtocolError(f"'ping' request needs a 'reply' channel, got {shown(obj)}")
    return Ping(reply)


def _parse_calls(raw: object) -> CallBatch:
    if not isinstance(raw, list) or not raw:
        raise AppProtocolError(f"'call' request needs a non-empty 'calls' list, got {shown(raw)}")
    calls: list[tuple[int, Message | AppProtocolError]] = []
    append = calls.append
    skipped: list[str] = []
    from_wire = Message.from_wire
    for entry in raw:
        # _is_call_id, inline: once per call.
        if isinstance(entry, list) and len(entry) == 2:
            call_id, wire = entry
            if type(call_id) is int and call_id >= 1:
                try:
                    message: Message | AppProtocolError = from_wire(wire)
                except MessageFormatError:
                    message = AppProtocolError(_why_malformed(wire, f"call {call_id} message"))
                append((call_id, message))
                continue
        skipped.append(
            f"each call must be [id, message] with an integer id >= 1, got {shown(entry)}"
        )
    if not calls:
        raise AppProtocolError(f"'call' request has no usable entry; the first: {skipped[0]}")
    return CallBatch(tuple(calls), tuple(skipped))


CALLS_NESTING: Final = 3
"""How deep a ``call`` request holds its messages (its map, ``calls``, an entry): the
request nests ``CALLS_NESTING`` + its deepest message's :func:`message_nesting`."""

ANSWERS_NESTING: Final = 4
"""How deep a ``replies`` message holds its messages (its map, ``replies``, an answer,
its messages): it nests ``ANSWERS_NESTING`` + its deepest message's nesting (an
answer without messages counts 0)."""


def message_nesting(message: Message) -> int:
    """How deep ``message.to_wire()`` nests (:func:`plugin_sdk.wire.nesting`), without
    building it: its map, and the deeper of its body and its headers (a map: 1 at least).

    With :data:`CALLS_NESTING` and :data:`ANSWERS_NESTING` it gives a batch's depth,
    which the session then need not find out by walking the batch.
    """
    headers = message.headers
    inner = nesting(headers) if headers else 1
    body = message.body
    if type(body) in CONTAINER_TYPES:  # else it nests 0 deep: no call to find out
        depth = nesting(body)
        if depth > inner:
            inner = depth
    return 1 + inner


def call_entry(call_id: int, message: Message) -> list[Any]:
    """One call as it goes in a batch: ``[call_id, message]``."""
    return [call_id, message.to_wire()]


def calls_to_wire(entries: list[list[Any]]) -> dict[str, Any]:
    """The ``call`` request carrying ``entries`` (from :func:`call_entry`)."""
    return {"op": "call", "calls": entries}


def cancel_to_wire(ids: list[int]) -> dict[str, Any]:
    """The ``cancel`` request for the calls ``ids`` (sent only to a plugin with the feature)."""
    return {"op": "cancel", "ids": ids}


def answer_entry(call_id: int, reply: Reply) -> list[Any]:
    """One answer as it goes in a batch: ``[call_id, verdict, messages, reason]``."""
    # str() of a StrEnum member is its value, at a quarter of ``.value``'s cost.
    messages = reply.messages
    # The usual answer (one message) without a comprehension's frame.
    wire = [messages[0].to_wire()] if len(messages) == 1 else [m.to_wire() for m in messages]
    return [call_id, str(reply.verdict), wire, reply.reason]


def answers_to_wire(entries: list[list[Any]]) -> dict[str, Any]:
    """The ``replies`` message carrying ``entries`` (from :func:`answer_entry`)."""
    return {"op": "replies", "replies": entries}


def parse_answers(obj: object) -> list[tuple[int, Reply]]:
    """Read a ``replies`` message, or raise :class:`AppProtocolError` saying what is wrong.

    Any malformation fails the whole message: a plugin that sends one is broken, and the
    host treats it as a crash rather than guessing which calls it meant.
    """
    if not isinstance(obj, dict) or obj.get("op") != "replies":
        raise AppProtocolError(f"expected a map with 'op': 'replies', got {shown(obj)}")
    raw = obj.get("replies")
    if not isinstance(raw, list) or not raw:
        raise AppProtocolError(f"'replies' must be a non-empty list, got {shown(raw)}")
    answers: list[tuple[int, Reply]] = []
    append = answers.append
    from_wire = Message.from_wire
    verdicts = _VERDICTS
    for entry in raw:
        # The usual answer, with exact type tests only; anything else (and every
        # malformation, with its error) goes through _parse_answer.
        if type(entry) is list and len(entry) == 4:
            call_id, raw_verdict, raw_messages, reason = entry
            if (
                type(call_id) is int
                and call_id >= 1
                and type(raw_verdict) is str
                and type(raw_messages) is list
                and type(reason) is str
                and (verdict := verdicts.get(raw_verdict)) is not None
            ):
                if not raw_messages:
                    if not reason and verdict is _CONTINUE:
                        append((call_id, _PASS))  # a plain pass: share one immutable Reply
                    else:
                        append((call_id, Reply(verdict, (), reason)))
                    continue
                if len(raw_messages) == 1:
                    try:
                        message = from_wire(raw_messages[0])
                    except MessageFormatError:
                        raise AppProtocolError(_first_malformed(call_id, raw_messages)) from None
                    append((call_id, Reply(verdict, (message,), reason)))
                    continue
        append(_parse_answer(entry, from_wire))
    return answers


def _parse_answer(entry: object, from_wire: Callable[[object], Message]) -> tuple[int, Reply]:
    """One answer of a ``replies`` message, checked in full; AppProtocolError if bad."""
    if not (isinstance(entry, list) and len(entry) == 4 and _is_call_id(entry[0])):
        raise AppProtocolError(
            "each answer must be [id, verdict, messages, reason] with an integer id >= 1,"
            f" got {shown(entry)}"
        )
    call_id, raw_verdict, raw_messages, reason = entry
    verdict = _VERDICTS.get(raw_verdict) if isinstance(raw_verdict, str) else None
    if verdict is None:
        choices = ", ".join(_VERDICTS)
        raise AppProtocolError(
            f"answer {call_id}: verdict must be one of {choices}, got {shown(raw_verdict)}"
        )
    if not isinstance(raw_messages, list):
        raise AppProtocolError(
            f"answer {call_id}: messages must be a list, got {shown(raw_messages)}"
        )
    if not isinstance(reason, str):
        raise AppProtocolError(f"answer {call_id}: reason must be a string, got {shown(reason)}")
    if not raw_messages and not reason and verdict is _CONTINUE:
        return call_id, _PASS
    try:
        messages = tuple([from_wire(m) for m in raw_messages])
    except MessageFormatError:
        raise AppProtocolError(_first_malformed(call_id, raw_messages)) from None
    return call_id, Reply(verdict, messages, reason)


# Parsing runs without a ``where`` (formatting one per message cost half as much again
# as ``Message.from_wire`` itself); only a failure pays for it, by parsing again.


def _why_malformed(obj: object, where: str) -> str:
    """The error text of a message known to be malformed, prefixed with ``where``."""
    try:
        Message.from_wire(obj, where=where)
    except MessageFormatError as exc:
        return str(exc)
    raise AssertionError(f"{where} parsed after all")  # from_wire is deterministic


def _first_malformed(call_id: int, raw_messages: list[Any]) -> str:
    """The error text of the first malformed message of answer ``call_id``."""
    for i, m in enumerate(raw_messages):
        try:
            Message.from_wire(m)
        except MessageFormatError:
            return _why_malformed(m, f"answer {call_id} message {i}")
    raise AssertionError(f"answer {call_id}: every message parsed after all")


def pong() -> dict[str, Any]:
    """The map a plugin answers a ping with."""
    return {"op": "pong"}


def check_pong(obj: object) -> None:
    """Raise :class:`AppProtocolError` unless ``obj`` is a pong."""
    if not (isinstance(obj, dict) and obj.get("op") == "pong"):
        raise AppProtocolError(f"expected {{'op': 'pong'}} in answer to a ping, got {shown(obj)}")
