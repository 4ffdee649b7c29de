"""The router's side of application layer v2, for the plugin-side tests.

:class:`AppHost` drives a plugin over a :class:`~plugin_sdk.session.Session`: calls in
batches with ids, answers read from the control channel and matched by id, every
``replies`` message kept as it arrived (so a test can see how answers were grouped).
:class:`RawHost` does the same over two blocking file descriptors with a bare sans-IO
:class:`~plugin_sdk.wire.Connection`, for tests that count frames or choose how the
bytes are cut.
"""

from __future__ import annotations

import os
import select
from collections.abc import Sequence
from typing import Any

from plugin_sdk import Message, PluginInfo, Reply
from plugin_sdk.app import Ready, call_entry, calls_to_wire, parse_answers, parse_handshake
from plugin_sdk.session import Receiver, Sender, Session
from plugin_sdk.wire import (
    ChannelOpened,
    Connection,
    Event,
    MessageReceived,
    Role,
    SessionEnded,
)

Answers = list[tuple[int, Reply]]

READ_TIMEOUT = 10.0
"""How long :class:`RawHost` waits for the plugin before failing the test."""


class AppHost:
    """A router's view of one plugin session (the calls channel is opened by :meth:`ready`)."""

    def __init__(self, session: Session, control: Receiver, calls: Sender, info: PluginInfo):
        self.session = session
        self.control = control
        self.calls = calls
        self.info = info
        self.last_id = 0
        self.received: list[Answers] = []
        """Every ``replies`` message received, in order."""
        self._unclaimed: dict[int, Reply] = {}

    @classmethod
    async def ready(cls, session: Session, control: Receiver) -> AppHost:
        """Read the plugin's ``ready`` (asserting it is one) and open the calls channel."""
        handshake = parse_handshake(await control.receive())
        assert isinstance(handshake, Ready), handshake
        return cls(session, control, await session.open_sender(), handshake.info)

    async def send_batch(self, messages: Sequence[Message]) -> list[int]:
        """Send ``messages`` as one ``call`` request with fresh ids; return the ids."""
        ids = list(range(self.last_id + 1, self.last_id + 1 + len(messages)))
        self.last_id += len(messages)
        entries = [call_entry(i, m) for i, m in zip(ids, messages, strict=True)]
        await self.calls.send(calls_to_wire(entries))
        return ids

    async def receive_answers(self) -> Answers:
        """The next ``replies`` message, parsed (and kept in :attr:`received`)."""
        answers = parse_answers(await self.control.receive())
        self.received.append(answers)
        for call_id, reply in answers:
            assert call_id not in self._unclaimed, f"call {call_id} answered twice"
            self._unclaimed[call_id] = reply
        return answers

    async def answers_to(self, ids: Sequence[int]) -> list[Reply]:
        """Read answers until every id in ``ids`` has one; return them in ``ids`` order."""
        while not all(i in self._unclaimed for i in ids):
            await self.receive_answers()
        return [self._unclaimed.pop(i) for i in ids]

    async def call_all(self, messages: Sequence[Message]) -> list[Reply]:
        """One batch, then its answers in call order."""
        return await self.answers_to(await self.send_batch(messages))

    async def call(self, message: Message) -> Reply:
        """One call alone in its batch; its answer."""
        [reply] = await self.call_all([message])
        return reply


def write_all(fd: int, data: bytes) -> None:
    """Write every byte to a blocking descriptor."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class RawHost:
    """The router's end as plain blocking reads and writes of a sans-IO connection."""

    def __init__(self, read_fd: int, write_fd: int) -> None:
        self.read_fd = read_fd
        self.write_fd = write_fd
        self.conn = Connection(Role.INITIATOR)
        self.events: list[Event] = []
        self.calls = 0
        self.control = 0
        self.opening = b""
        """The OPEN of the calls channel, made by :meth:`handshake`, for a test to write."""
        self.held = 0
        """Bytes received on the control channel and not acknowledged yet."""

    def handshake(self) -> Ready:
        """HELLO both ways and the plugin's ``ready``; the calls channel is made but its
        OPEN is left in :attr:`opening`, so a test decides when (and with what) it goes."""
        write_all(self.write_fd, self.conn.hello())
        opened = self.read_until(lambda e: isinstance(e, ChannelOpened))
        self.control = opened.channel
        ready = self.read_until(lambda e: isinstance(e, MessageReceived))
        self.held += ready.size
        self.acknowledge()
        handshake = parse_handshake(ready.payload)
        assert isinstance(handshake, Ready), handshake
        self.calls, self.opening = self.conn.open()
        return handshake

    def read_until(self, wanted: Any) -> Any:
        """Read until an event ``wanted(event)`` accepts arrives; remove it and return it."""
        while True:
            for event in self.events:
                if wanted(event):
                    self.events.remove(event)
                    return event
            data = self._read()
            self.events += self.conn.receive_data(data)
            self.write_fd_out()
            if not data and not any(wanted(e) for e in self.events):
                raise AssertionError(f"EOF first; got {self.events}")

    def write_fd_out(self) -> None:
        """Write what the connection wants sent (credit, mostly)."""
        if out := self.conn.data_to_send():
            write_all(self.write_fd, out)

    def replies(self, *, acknowledge: bool = True) -> Answers:
        """The next ``replies`` message on the control channel, parsed.

        ``acknowledge=False`` keeps its bytes unacknowledged (in :attr:`held`, for
        :meth:`acknowledge`), so the plugin's credit on the control channel does not
        come back.
        """
        event = self.read_until(
            lambda e: isinstance(e, MessageReceived) and e.channel == self.control
        )
        self.held += event.size
        if acknowledge:
            self.acknowledge()
        return parse_answers(event.payload)

    def acknowledge(self) -> None:
        """Say the control channel's held bytes were read (CREDIT, when due)."""
        write_all(self.write_fd, self.conn.acknowledge(self.control, self.held))
        self.held = 0

    def read_to_eof(self) -> list[Event]:
        """Every event until the plugin's end of the stream."""
        while not any(isinstance(e, SessionEnded) for e in self.events):
            self.events += self.conn.receive_data(self._read())
        return self.events

    def _read(self) -> bytes:
        # A plugin that never answers fails the test instead of hanging it.
        ready, _, _ = select.select([self.read_fd], [], [], READ_TIMEOUT)
        if not ready:
            raise AssertionError(f"nothing from the plugin within {READ_TIMEOUT}s")
        return os.read(self.read_fd, 1 << 16)
