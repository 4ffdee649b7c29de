"""The routing state machine for one input: pure, no I/O, no clock, no event loop.

The driver (the trio engine, or a test) asks :meth:`Routing.pending` for calls to
make, makes them however it likes (in any order, concurrently), and reports each
outcome with :meth:`Routing.complete`, until :attr:`Routing.done`; then
:meth:`Routing.result` gives the one :class:`~router.result.Result`. A driver that
makes the next calls as soon as it can reports with :meth:`Routing.complete_next`
instead, which also hands out those calls (what ``pending()`` would). The rules are
in docs/ROUTING.md.

Every branch has a *key*: the path of child indices from the input down the tree
of branches. Ordering keys as tuples is a depth-first walk in reply order, so the
trace, the outputs and "the first failure" are all ordered by key and come out the
same whatever order the calls complete in. Once a failure at key ``k`` is known,
work on keys after ``k`` can no longer change the result and is abandoned; work
before ``k`` goes on, because it might fail first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, Final, NamedTuple

from plugin_sdk import Headers, Message, OnError, PluginInfo, Reply, Verdict

from ..result import Hop, HopVerdict, Result, Status
from ._lineage import Lineage, describe_loop, lineage_to_wire
from ._plan import Plan

__all__ = ["DEFAULT_HOP_LIMIT", "DEFAULT_MAX_MESSAGES", "Call", "Routing"]

DEFAULT_HOP_LIMIT: Final = 16
"""Most derivations a message may be away from its input."""
DEFAULT_MAX_MESSAGES: Final = 1024
"""Most messages (the input and every accepted reply message) one input may make."""

Key = tuple[int, ...]

# ``tuple.__new__(NamedTupleClass, fields)`` makes the same named tuple as calling the
# class, without the Python frame of its generated ``__new__`` (about 350 ns of 500):
# used where one is made per plugin call. Fields go in declaration order, all given.
_new: Final[Any] = tuple.__new__
_hop_of: Final = itemgetter(2)
"""The :class:`Hop` of a recorded ``(key, attempt, hop)``."""


class Call(NamedTuple):
    """One plugin call the driver should make and then report with ``complete``.

    A named tuple rather than a frozen dataclass: as immutable, and about three times
    cheaper to make (a frozen dataclass sets each field through ``object.__setattr__``),
    which counts because the router makes one per plugin call.
    """

    token: int
    plugin: str
    message: Message
    attempt: int
    """1 for the first try; more when the plugin's policy is ``retry``."""
    info: PluginInfo
    """The plugin's info as the plan knows it (timeout, concurrency...)."""


@dataclass(slots=True)
class _Branch:
    """A message at one position of one pipeline.

    Never changed while queued or outstanding; a branch whose call completed with a
    common reply becomes its own child in place (see ``Routing._simple_reply``).
    Not ``frozen``: a frozen dataclass pays a ``object.__setattr__`` per field on
    creation.
    """

    key: Key
    message: Message
    pipeline: tuple[PluginInfo, ...]
    position: int
    lineage: Lineage
    parent: str | None
    """Id of the message this branch's pipeline was derived from (None: the input's own)."""
    attempt: int = 1


@dataclass(frozen=True, slots=True)
class _Failure:
    key: Key
    plugin: str
    reason: str


class Routing:
    """Routes one input message through an immutable :class:`Plan`."""

    __slots__ = (
        "_count",
        "_drops",
        "_failure",
        "_finals",
        "_hop_limit",
        "_hops",
        "_linear",
        "_max_messages",
        "_next_token",
        "_outstanding",
        "_ready",
        "message",
        "plan",
    )

    def __init__(
        self,
        message: Message,
        plan: Plan,
        *,
        hop_limit: int = DEFAULT_HOP_LIMIT,
        max_messages: int = DEFAULT_MAX_MESSAGES,
    ) -> None:
        if hop_limit < 1:
            raise ValueError(f"hop_limit must be >= 1, got {hop_limit}")
        if max_messages < 1:
            raise ValueError(f"max_messages must be >= 1, got {max_messages}")
        self.message: Final = message
        self.plan: Final = plan
        self._hop_limit = hop_limit
        self._max_messages = max_messages
        self._count = 1
        self._next_token = 1
        self._ready: list[_Branch] = []
        self._outstanding: dict[int, _Branch] = {}
        self._hops: list[tuple[Key, int, Hop]] = []
        self._finals: list[tuple[Key, Message, bool]] = []
        self._drops: list[tuple[Key, str, str]] = []
        self._failure: _Failure | None = None
        # True while no call has had two or more children: then at most one branch
        # is ever alive, so hops, finals and drops are recorded in key order already
        # and the result needs no sorting.
        self._linear = True
        pipeline = plan.for_type(message.type)
        if pipeline:  # what _advance does, for the input, without its frame
            self._ready.append(_Branch((), message, pipeline, 0, (), None))
        else:
            self._finals.append(((), message, False))

    @classmethod
    def resume(
        cls,
        message: Message,
        plan: Plan,
        *,
        pipeline: tuple[PluginInfo, ...],
        at: Message,
        position: int,
        hops: list[Hop],
        count: int,
        hop_limit: int = DEFAULT_HOP_LIMIT,
        max_messages: int = DEFAULT_MAX_MESSAGES,
    ) -> Routing:
        """Routing for input ``message`` that went straight down its own pipeline so far.

        Every hop of ``hops`` was a pass or a same-type replace (so the input is one
        branch, child 0 of child 0 ...), ``at`` is the message now at ``position`` of
        ``pipeline`` (the input's own, ``plan.for_type(message.type)``), and ``count``
        messages count against the budget. ``pending()`` then hands out the call at
        ``position``. This is how :class:`~router.pipeline.Straight` hands an input
        over when a reply needs the general rules.
        """
        routing = cls(message, plan, hop_limit=hop_limit, max_messages=max_messages)
        routing._count = count
        routing._hops = [((0,) * depth, 1, hop) for depth, hop in enumerate(hops)]
        routing._ready.clear()
        routing._finals.clear()
        key = (0,) * position
        if position < len(pipeline):
            routing._ready.append(_Branch(key, at, pipeline, position, (), None))
        else:
            routing._finals.append((key, at, False))
        return routing

    # -- driving ---------------------------------------------------------------

    @property
    def done(self) -> bool:
        """True when nothing left to do can change the result."""
        if self._ready:
            return False
        if self._failure is None:
            return not self._outstanding
        return all(self._abandoned(b) for b in self._outstanding.values())

    def pending(self) -> list[Call]:
        """The calls to make now (each handed out once), in key order."""
        ready = self._ready
        if len(ready) == 1 and self._failure is None:
            # The common case (one branch going on down its pipeline), without the sort.
            branch = ready.pop()
            token = self._next_token
            self._next_token = token + 1
            self._outstanding[token] = branch
            info = branch.pipeline[branch.position]
            return [_new(Call, (token, info.name, branch.message, branch.attempt, info))]
        ready = sorted((b for b in ready if not self._abandoned(b)), key=_by_key)
        self._ready.clear()
        calls = []
        for branch in ready:
            token = self._next_token
            self._next_token += 1
            self._outstanding[token] = branch
            info = branch.pipeline[branch.position]
            calls.append(Call(token, info.name, branch.message, branch.attempt, info))
        return calls

    def complete(
        self,
        token: int,
        reply: Reply | None,
        *,
        duration: float,
        error: str | None = None,
        timed_out: bool = False,
        expired: bool = False,
    ) -> None:
        """Report the outcome of call ``token``: a reply, or an ``error`` text.

        ``timed_out`` marks an error as a timeout (the trace then says so).
        ``expired`` marks it as the message's own deadline passing: the input fails
        whatever the plugin's on-error policy (retrying or skipping cannot meet a
        deadline that is gone). A reply
        that is not a :class:`Reply` of :class:`Message` objects counts as an error.
        A completion for work that can no longer matter (after a failure) is ignored.
        """
        branch = self._take(token)
        if self._failure is not None and self._abandoned(branch):
            return
        self._settle(branch, reply, duration, error, timed_out, expired)

    def complete_next(
        self,
        token: int,
        reply: Reply | None,
        *,
        duration: float,
        error: str | None = None,
        timed_out: bool = False,
        expired: bool = False,
    ) -> list[Call]:
        """:meth:`complete`, then :meth:`pending`: the calls to make now, in key order.

        One call per hop for a driver that makes the next calls as soon as it can;
        exactly the same as ``complete(...)`` followed by ``pending()`` when not
        :attr:`done`. An empty list means: done, or waiting for outstanding calls
        (check :attr:`done`).
        """
        outstanding = self._outstanding
        try:
            branch = outstanding.pop(token)
        except KeyError:
            raise ValueError(f"unknown or already completed call token {token}") from None
        if self._failure is None:
            if error is None and not outstanding and not self._ready:
                # The only branch alive, answered by a common reply: its next call is
                # handed out at once, without the queue of ready branches.
                child = self._simple_reply(branch, reply, duration)
                if child is not None:
                    position = child.position
                    pipeline = child.pipeline
                    if position < len(pipeline):
                        token = self._next_token
                        self._next_token = token + 1
                        outstanding[token] = child
                        info = pipeline[position]
                        return [_new(Call, (token, info.name, child.message, 1, info))]
                    self._advance(child)
                    return []
            self._settle(branch, reply, duration, error, timed_out, expired)
        elif not self._abandoned(branch):
            self._settle(branch, reply, duration, error, timed_out, expired)
        # Nothing ready: done, or waiting for other calls; pending() would say [] too.
        return self.pending() if self._ready else []

    def result(self) -> Result:
        """The input's one result; only once :attr:`done`."""
        if not self.done:
            raise RuntimeError("routing is not done yet: complete the pending calls first")
        linear = self._linear
        hops = self._hops if linear else sorted(self._hops, key=_by_key_and_attempt)
        failure = self._failure
        if failure is not None:
            fkey = failure.key
            return Result(
                input_id=self.message.id,
                status=Status.FAILED,
                by=failure.plugin,
                reason=failure.reason,
                trace=tuple([hop for key, _, hop in hops if key <= fkey]),
            )
        trace = tuple(map(_hop_of, hops))  # no comprehension frame: once per input
        finals = self._finals if linear else sorted(self._finals, key=_final_key)
        if len(finals) == 1:  # the usual end: the input delivered as one message
            _, message, derived = finals[0]
            if not derived:
                result: Result = _new(
                    Result, (self.message.id, _DELIVERED, (message,), None, "", trace)
                )
                return result
        messages = tuple([m for _, m, _ in finals])
        for _, _, derived in finals:
            if not derived:
                return Result(self.message.id, Status.DELIVERED, messages, None, "", trace)
        _, by, reason = min(self._drops)
        return Result(self.message.id, Status.DROPPED, messages, by, reason, trace)

    # -- the rules -------------------------------------------------------------

    def _abandoned(self, branch: _Branch) -> bool:
        return self._failure is not None and branch.key > self._failure.key

    def _advance(self, branch: _Branch) -> None:
        if branch.position >= len(branch.pipeline):
            self._finals.append((branch.key, branch.message, branch.parent is not None))
        else:
            self._ready.append(branch)

    def _take(self, token: int) -> _Branch:
        try:
            return self._outstanding.pop(token)
        except KeyError:
            raise ValueError(f"unknown or already completed call token {token}") from None

    def _settle(
        self,
        branch: _Branch,
        reply: Reply | None,
        duration: float,
        error: str | None,
        timed_out: bool,
        expired: bool,
    ) -> None:
        """Apply the rules to the outcome of ``branch``'s call (not abandoned)."""
        if error is None:
            child = self._simple_reply(branch, reply, duration)
            if child is not None:
                self._advance(child)
                return
        info = branch.pipeline[branch.position]
        if error is None:
            error = _reply_problem(reply)
        if error is not None:
            self._call_failed(branch, info, error, duration, timed_out or expired, expired)
            return
        assert isinstance(reply, Reply)
        self._replied(branch, info, reply, duration)

    def _simple_reply(
        self, branch: _Branch, reply: Reply | None, duration: float
    ) -> _Branch | None:
        """The common replies, decided before any general check: the branch's one child.

        A pass, or a replace by one plain Message of the same type within the message
        budget: the hop is recorded and the child (not yet advanced) returned: the
        branch itself, moved on. Any other reply: None, nothing recorded or changed,
        and the general rules decide. Does what ``_hop`` and ``_continue`` do, in one
        frame: it runs once per plugin call. ``branch`` must have just been taken from
        the outstanding calls. :meth:`Straight.step` applies the same rule to an input
        not yet escalated (tests/test_pipeline_straight.py holds the two together).
        """
        if type(reply) is not Reply or reply.verdict is not _CONTINUE:
            return None
        messages = reply.messages
        old = branch.message
        if not messages:
            message = old
            verdict = _PASS
        elif len(messages) != 1:
            return None
        else:
            message = messages[0]
            if (
                type(message) is not Message
                or message.type != old.type
                or self._count >= self._max_messages
            ):
                return None
            self._count += 1
            verdict = _REPLACE
        pipeline = branch.pipeline
        position = branch.position
        key = branch.key
        hop: Hop = _new(
            Hop, (pipeline[position].name, old.id, old.type, verdict, duration, reply.reason)
        )
        self._hops.append((key, branch.attempt, hop))
        parent = branch.parent
        if parent is not None and message is not old:
            # As in _continue: a same-type reply in a derived pipeline keeps its lineage.
            message = _with_lineage(message, branch.lineage, parent)
        # The branch becomes its own only child, in place: once its call is taken from
        # the outstanding ones nothing else holds it (hops and finals keep its key and
        # message, never the branch), and this saves an object per plugin call.
        branch.key = (*key, 0)
        branch.message = message
        branch.position = position + 1
        branch.attempt = 1
        return branch

    def _hop(self, branch: _Branch, verdict: HopVerdict, duration: float, reason: str) -> None:
        info = branch.pipeline[branch.position]
        message = branch.message
        hop = Hop(info.name, message.id, message.type, verdict, duration, reason)
        self._hops.append((branch.key, branch.attempt, hop))

    def _fail(self, key: Key, plugin: str, reason: str) -> None:
        if self._failure is None or key < self._failure.key:
            self._failure = _Failure(key, plugin, reason)

    def _call_failed(
        self,
        branch: _Branch,
        info: PluginInfo,
        error: str,
        duration: float,
        timed_out: bool,
        expired: bool = False,
    ) -> None:
        policy = OnError.FAIL if expired else info.on_error
        if policy == OnError.RETRY and branch.attempt < info.max_attempts:
            self._hop(branch, HopVerdict.RETRY, duration, error)
            self._ready.append(_replace_attempt(branch, branch.attempt + 1))
        elif policy == OnError.SKIP:
            self._hop(branch, HopVerdict.SKIP, duration, error)
            self._advance(_continue(branch, 0, branch.message))
        else:
            if policy == OnError.RETRY:
                error = f"{error} (gave up after {branch.attempt} attempts)"
            verdict = HopVerdict.TIMEOUT if timed_out else HopVerdict.ERROR
            self._hop(branch, verdict, duration, error)
            self._fail(branch.key, info.name, error)

    def _replied(self, branch: _Branch, info: PluginInfo, reply: Reply, duration: float) -> None:
        """The general case of a usable reply: any verdict but ERROR, any messages."""
        mtype = branch.message.type
        dropping = reply.verdict == Verdict.DROP
        same = 0
        for m in reply.messages:
            if m.type == mtype:
                same += 1
        # Children in output order: the unchanged message first when it goes on,
        # then the reply's messages in reply order.
        items: list[Message] = list(reply.messages)
        if dropping:
            verdict = HopVerdict.DROP
            items = [m for m in items if m.type != mtype]
        elif same == 0:
            verdict = HopVerdict.PASS
        elif same == 1:
            verdict = HopVerdict.REPLACE
        else:
            verdict = HopVerdict.FAN_OUT
        children: list[_Branch] = []
        if verdict == HopVerdict.PASS:
            children.append(_continue(branch, 0, branch.message))
        for message in items:
            key = (*branch.key, len(children))
            if message.type == mtype:
                child = _continue(branch, len(children), message)
            else:
                lineage = (*branch.lineage, (mtype, info.name))
                if len(lineage) > self._hop_limit:
                    reason = describe_loop(lineage, message.type, self._hop_limit)
                    self._hop(branch, HopVerdict.LOOP, duration, reason)
                    self._fail(branch.key, info.name, reason)
                    return
                child = _Branch(
                    key,
                    _with_lineage(message, lineage, branch.message.id, branch.message.headers),
                    self.plan.for_type(message.type),
                    0,
                    lineage,
                    branch.message.id,
                )
            self._count += 1
            if self._count > self._max_messages:
                reason = (
                    f"message limit exceeded: more than {self._max_messages} messages"
                    " for one input (a fan-out explosion?)"
                )
                self._hop(branch, HopVerdict.OVERFLOW, duration, reason)
                self._fail(branch.key, info.name, reason)
                return
            children.append(child)
        self._hop(branch, verdict, duration, reply.reason)
        if dropping and branch.parent is None:
            self._drops.append((branch.key, info.name, reply.reason))
        if len(children) > 1:
            self._linear = False
        for child in children:
            self._advance(child)


# Module constants: an enum member looked up on its class costs ~80 ns a time.
_CONTINUE: Final = Verdict.CONTINUE
_PASS: Final = HopVerdict.PASS
_REPLACE: Final = HopVerdict.REPLACE
_DELIVERED: Final = Status.DELIVERED


def _by_key(branch: _Branch) -> Key:
    return branch.key


def _final_key(final: tuple[Key, Message, bool]) -> Key:
    return final[0]


def _by_key_and_attempt(hop: tuple[Key, int, Hop]) -> tuple[Key, int]:
    return hop[0], hop[1]


def _replace_attempt(branch: _Branch, attempt: int) -> _Branch:
    return _Branch(
        branch.key,
        branch.message,
        branch.pipeline,
        branch.position,
        branch.lineage,
        branch.parent,
        attempt,
    )


def _continue(branch: _Branch, index: int, message: Message) -> _Branch:
    """``message`` going on down the rest of ``branch``'s pipeline."""
    parent = branch.parent
    if parent is not None and message is not branch.message:
        # A same-type reply in a derived pipeline keeps that pipeline's lineage,
        # whatever headers the plugin built it with.
        message = _with_lineage(message, branch.lineage, parent)
    return _Branch(
        (*branch.key, index),
        message,
        branch.pipeline,
        branch.position + 1,
        branch.lineage,
        branch.parent,
    )


_INHERITED: Final = (Headers.TRACE, Headers.DEADLINE)
"""Headers a derived message takes from its parent unless its plugin set them."""


def _with_lineage(
    message: Message,
    lineage: Lineage,
    parent: str,
    parent_headers: Mapping[str, Any] | None = None,
) -> Message:
    wire = lineage_to_wire(lineage)
    inherit = {
        name: parent_headers[name]
        for name in _INHERITED
        if parent_headers and name in parent_headers and name not in message.headers
    }
    if (
        not inherit
        and message.headers.get(Headers.LINEAGE) == wire
        and message.headers.get(Headers.PARENT) == parent
    ):
        return message
    headers = {**message.headers, **inherit, Headers.LINEAGE: wire, Headers.PARENT: parent}
    return Message(type=message.type, body=message.body, id=message.id, headers=headers)


def _reply_problem(reply: object) -> str | None:
    """Why ``reply`` cannot be routed (an error text), or None if it is a usable reply."""
    if not isinstance(reply, Reply):
        return f"plugin returned {type(reply).__name__}, not a Reply"
    verdict = reply.verdict
    if type(verdict) is not Verdict:  # a plain string, say: look it up (slower)
        try:
            verdict = Verdict(verdict)
        except ValueError:
            return f"plugin replied with an unknown verdict {reply.verdict!r}"
    if verdict == Verdict.ERROR:
        return reply.reason or "plugin reported an error without a reason"
    for m in reply.messages:
        if not isinstance(m, Message):
            return f"plugin replied with {type(m).__name__} among its messages, not a Message"
    return None
