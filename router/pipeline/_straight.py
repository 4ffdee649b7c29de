"""The common case of routing, cheaply: one input going straight down its own pipeline.

Most inputs never fan out, derive, drop or fail: every plugin passes them on or
replaces them with one message of the same type. Such an input is one branch
moving down one pipeline, and routing it needs none of :class:`Routing`'s keys,
call tokens or queue of ready branches: a position, the message there and the
hops so far. :class:`Straight` is exactly that.

The driver hands :meth:`Straight.step` each reply. A pass or a same-type replace
(within the message budget) moves the input on and returns True. Anything else
returns False and changes nothing: the driver then calls :meth:`Straight.escalate`
and goes on with the :class:`Routing` it returns, which holds the same state and
whose one pending call is the call just made, so the general rules decide that
reply and everything after it. The result is the same as if a Routing had driven
the input from the start (hypothesis checks it against the reference model).
"""

from __future__ import annotations

from typing import Any, Final

from plugin_sdk import Message, PluginInfo, Reply, Verdict

from ..result import Hop, HopVerdict, Result, Status
from ._plan import Plan
from ._routing import DEFAULT_HOP_LIMIT, DEFAULT_MAX_MESSAGES, Routing

__all__ = ["Straight"]

_new: Final[Any] = tuple.__new__  # see _routing: a named tuple without its __new__ frame
_CONTINUE: Final = Verdict.CONTINUE
_PASS: Final = HopVerdict.PASS
_REPLACE: Final = HopVerdict.REPLACE
_DELIVERED: Final = Status.DELIVERED


class Straight:
    """One input at one position of its own pipeline, every reply so far a pass or replace."""

    __slots__ = ("count", "hops", "input", "max_messages", "message", "pipeline", "position")

    def __init__(
        self,
        message: Message,
        pipeline: tuple[PluginInfo, ...],
        max_messages: int = DEFAULT_MAX_MESSAGES,
    ) -> None:
        self.input: Final = message
        self.message = message
        """The message the plugin at :attr:`position` is (to be) handed."""
        self.pipeline: Final = pipeline
        """The input's own pipeline (``plan.for_type(message.type)``)."""
        self.position = 0
        self.hops: list[Hop] = []
        self.count = 1
        """Messages counted against the budget so far: the input and each replacement."""
        self.max_messages = max_messages

    @property
    def done(self) -> bool:
        """Whether the input passed the last position (then :meth:`result`)."""
        return self.position >= len(self.pipeline)

    @property
    def current(self) -> PluginInfo:
        """The plugin to call now (only while not :attr:`done`)."""
        return self.pipeline[self.position]

    def step(self, reply: object, duration: float) -> bool:
        """Apply the current plugin's ``reply``, which took ``duration`` seconds.

        ``reply`` is a :class:`Reply`, or one :class:`Message` standing for
        ``replace(message)`` (how in-process plugins answer most often:
        ``Plugin.answer_now``). True: it was a pass or a same-type replace, recorded,
        and the input moved to the next position. False: any other reply; nothing
        changed (escalate). The same rule as ``Routing._simple_reply``, on this lighter
        state; the property in tests/test_pipeline_straight.py holds the two to the
        same results.
        """
        old = self.message
        if type(reply) is Reply:
            if reply.verdict is not _CONTINUE:
                return False
            messages = reply.messages
            if not messages:
                new = old
                verdict = _PASS
            elif len(messages) != 1:
                return False
            else:
                new = messages[0]
                if (
                    type(new) is not Message
                    or new.type != old.type
                    or self.count >= self.max_messages
                ):
                    return False
                self.count += 1
                verdict = _REPLACE
            reason = reply.reason
        elif type(reply) is Message:  # replace(reply): the same rule as above
            new = reply
            if new.type != old.type or self.count >= self.max_messages:
                return False
            self.count += 1
            verdict = _REPLACE
            reason = ""
        else:
            return False
        position = self.position
        self.hops.append(
            _new(Hop, (self.pipeline[position].name, old.id, old.type, verdict, duration, reason))
        )
        self.message = new
        self.position = position + 1
        return True

    def result(self) -> Result:
        """The input's result once :attr:`done`: delivered as its one final message."""
        if self.position < len(self.pipeline):
            raise RuntimeError("routing is not done yet: the input has plugins left")
        result: Result = _new(
            Result, (self.input.id, _DELIVERED, (self.message,), None, "", tuple(self.hops))
        )
        return result

    def escalate(self, plan: Plan, *, hop_limit: int = DEFAULT_HOP_LIMIT) -> Routing:
        """A :class:`Routing` in this state; its ``pending()`` is the current call.

        ``plan`` must be the plan :attr:`pipeline` came from (derived messages get
        their pipelines from it). Only while not :attr:`done`.
        """
        if self.position >= len(self.pipeline):
            raise RuntimeError("nothing to escalate: the input has no plugins left")
        return Routing.resume(
            self.input,
            plan,
            pipeline=self.pipeline,
            at=self.message,
            position=self.position,
            hops=self.hops,
            count=self.count,
            hop_limit=hop_limit,
            max_messages=self.max_messages,
        )
