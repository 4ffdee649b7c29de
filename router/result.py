"""What routing one input ends in: exactly one :class:`Result`, with its trace.

The rules that produce a result are in docs/ROUTING.md; this module only holds
the records and their wire shape (plain dicts, JSON and msgpack friendly).
"""

from __future__ import annotations

import enum
from typing import Any, NamedTuple

from plugin_sdk import Message

__all__ = ["Hop", "HopVerdict", "Result", "Status", "describe_exception"]


class Status(enum.StrEnum):
    """How an input ended."""

    DELIVERED = "delivered"
    """At least one branch of the input's own pipeline reached its end."""
    DROPPED = "dropped"
    """Every branch of the input's own pipeline was dropped; nothing failed."""
    FAILED = "failed"
    """Something in the input's tree failed (or the input never reached routing)."""


class HopVerdict(enum.StrEnum):
    """What the router made of one plugin call (the ``verdict`` of a :class:`Hop`)."""

    PASS = "pass"
    """CONTINUE without a message of the input's type: the message went on unchanged."""
    REPLACE = "replace"
    """CONTINUE with one message of the input's type: it went on instead."""
    FAN_OUT = "fan-out"
    """CONTINUE with several messages of the input's type: each went on."""
    DROP = "drop"
    """DROP: this branch stopped here."""
    SKIP = "skip"
    """The call failed and the plugin's policy is ``skip``: the message went on unchanged."""
    RETRY = "retry"
    """The call failed and will be tried again (policy ``retry``)."""
    ERROR = "error"
    """The call failed (ERROR reply or exception) and failed the input."""
    TIMEOUT = "timeout"
    """The call timed out and failed the input."""
    LOOP = "loop"
    """The reply derived a message past the hop limit: a routing loop; the input failed."""
    OVERFLOW = "overflow"
    """The reply took the input past its message budget; the input failed."""


class Hop(NamedTuple):
    """One plugin call in a result's trace.

    A named tuple: immutable like a frozen dataclass, and about three times cheaper
    to make (a frozen dataclass sets each field through ``object.__setattr__``),
    which counts because the router makes one per plugin call.
    """

    plugin: str
    message_id: str
    """The id of the message the plugin was handed."""
    type: str
    """The type of that message (the pipeline it was in)."""
    verdict: str
    """A :class:`HopVerdict` value."""
    duration: float
    """Seconds the call took, as measured by the engine."""
    reason: str = ""

    def to_wire(self) -> dict[str, Any]:
        """The JSON/msgpack shape of this hop (``duration`` in seconds, to the µs)."""
        return {
            "plugin": self.plugin,
            "message_id": self.message_id,
            "type": self.type,
            "verdict": str(self.verdict),
            # Microseconds are all a clock on a shared host can vouch for; more digits
            # are noise in every result line.
            "duration": round(self.duration, 6),
            "reason": self.reason,
        }


class Result(NamedTuple):
    """The one outcome of one input: status, output messages, who decided, and the trace.

    A named tuple, as :class:`Hop` is: immutable, and cheap to make once per input.
    """

    input_id: str
    status: Status
    messages: tuple[Message, ...] = ()
    """The final messages, in output order (empty when FAILED)."""
    by: str | None = None
    """The plugin that dropped or failed the input; None when delivered or never routed."""
    reason: str = ""
    trace: tuple[Hop, ...] = ()

    @classmethod
    def failed_input(cls, input_id: str, reason: str) -> Result:
        """A failure for an input that never reached routing (a malformed line, say)."""
        return cls(input_id=input_id, status=Status.FAILED, by=None, reason=reason)

    def to_wire(self) -> dict[str, Any]:
        """The JSON/msgpack shape: ``{"id", "status", "messages", "by", "reason", "trace"}``."""
        return {
            "id": self.input_id,
            "status": str(self.status),
            "messages": [m.to_wire() for m in self.messages],
            "by": self.by,
            "reason": self.reason,
            "trace": [h.to_wire() for h in self.trace],
        }


def describe_exception(exc: BaseException) -> str:
    """``"ExcType: text"``: how an exception a plugin call raised reads in a trace (the
    engine's own, and the subprocess handle's for calls it could not make)."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
