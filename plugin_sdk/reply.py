"""What a plugin answers for one message: a verdict and a list of messages.

The routing meaning of a reply (documented in README and docs/ROUTING.md):

* ``CONTINUE`` with no message of the input's type: the input goes on unchanged;
  with one: it replaces the input; with several: each goes on (fan-out).
* ``DROP`` (with a reason): the input stops here. Replies of other types are still
  routed (an authz denial may emit an audit event).
* ``ERROR`` (with a reason): the plugin failed; its on-error policy decides.

In every case but ERROR, replies of *other* types are routed as derived messages.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from .message import Message

__all__ = ["Reply", "Verdict", "drop", "emit", "error", "passthrough", "replace"]


class Verdict(enum.StrEnum):
    """The outcome a plugin states for the message it was handed."""

    CONTINUE = "continue"
    DROP = "drop"
    ERROR = "error"


@dataclass(frozen=True, slots=True, init=False)
class Reply:
    """A verdict, the messages a plugin sends back, and a reason for DROP/ERROR."""

    verdict: Verdict = Verdict.CONTINUE
    messages: tuple[Message, ...] = ()
    reason: str = ""

    def __init__(
        self,
        verdict: Verdict = Verdict.CONTINUE,
        messages: tuple[Message, ...] = (),
        reason: str = "",
    ) -> None:
        # What the generated __init__ does, minus its cost: a frozen dataclass sets
        # each field through ``object.__setattr__``, which made a Reply cost twice a
        # Message. The slots' own descriptors set them directly (one per plugin call).
        _set_verdict(self, verdict)
        _set_messages(self, messages)
        _set_reason(self, reason)


_set_verdict = Reply.__dict__["verdict"].__set__
_set_messages = Reply.__dict__["messages"].__set__
_set_reason = Reply.__dict__["reason"].__set__


_PASS = Reply()


def passthrough() -> Reply:
    """Let the message go on unchanged."""
    return _PASS


def replace(message: Message, *more: Message) -> Reply:
    """Hand on ``message`` (and ``more``: fan-out) instead of the input."""
    return Reply(Verdict.CONTINUE, (message, *more))


def emit(*messages: Message) -> Reply:
    """Send these messages back; same-type ones replace the input, others are derived."""
    return Reply(Verdict.CONTINUE, tuple(messages))


def drop(reason: str, also: Iterable[Message] = ()) -> Reply:
    """Stop the input here with ``reason``; messages in ``also`` are still routed."""
    return Reply(Verdict.DROP, tuple(also), reason)


def error(reason: str) -> Reply:
    """Report that handling failed; the plugin's on-error policy applies."""
    return Reply(Verdict.ERROR, (), reason)
