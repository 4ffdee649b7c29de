"""The trio session: channels, references and byte streams over one pair of streams.

A :class:`Session` adapts the sans-IO :mod:`plugin_sdk.wire` core to trio. It runs
over any ``(trio.abc.ReceiveStream, trio.abc.SendStream)`` pair: FD 3/4
:class:`trio.lowlevel.FdStream` objects in a plugin, pipe ends in the router, one
:class:`trio.SocketStream` for both directions on the admin socket, or
:func:`trio.testing.memory_stream_pair` ends in tests::

    async with open_session(FdStream(3), FdStream(4), Role.RESPONDER) as session:
        requests = await session.accept()          # a top-level channel the peer opened
        async for request in requests:             # until the peer CLOSEs it
            await request["reply"].send({"ok": True})   # a Sender the peer put in it

    async with open_session(from_plugin, to_plugin, Role.INITIATOR) as session:
        requests = await session.open_sender()
        replies, reply_ref = session.pipe()
        await requests.send({"type": "ping", "reply": reply_ref})
        answer = await replies.receive()

Channels are one-way. A :class:`Sender` writes messages, a :class:`Receiver` reads
them; a :class:`ByteStreamWriter` / :class:`ByteStreamReader` pair carries bytes
(they are trio streams). References (:class:`SenderRef`, :class:`ReceiverRef`,
:class:`StreamRef`) put in a payload arrive at the peer as live ends.
"""

from ..wire import ErrorCode as ErrorCode
from ..wire import Role as Role
from ._ends import ByteStreamReader as ByteStreamReader
from ._ends import ByteStreamWriter as ByteStreamWriter
from ._ends import Receiver as Receiver
from ._ends import Sender as Sender
from ._errors import ChannelResetError as ChannelResetError
from ._errors import EndOfChannel as EndOfChannel
from ._errors import HandshakeError as HandshakeError
from ._errors import SessionBroken as SessionBroken
from ._errors import SessionClosed as SessionClosed
from ._errors import SessionError as SessionError
from ._fdread import receive_some as receive_some
from ._refs import ReceiverRef as ReceiverRef
from ._refs import SenderRef as SenderRef
from ._refs import StreamRef as StreamRef
from ._session import HIGH_WATER as HIGH_WATER
from ._session import READ_SIZE as READ_SIZE
from ._session import Session as Session
from ._session import open_session as open_session

__all__ = [
    "HIGH_WATER",
    "READ_SIZE",
    "ByteStreamReader",
    "ByteStreamWriter",
    "ChannelResetError",
    "EndOfChannel",
    "ErrorCode",
    "HandshakeError",
    "Receiver",
    "ReceiverRef",
    "Role",
    "Sender",
    "SenderRef",
    "Session",
    "SessionBroken",
    "SessionClosed",
    "SessionError",
    "StreamRef",
    "open_session",
    "receive_some",
]
