"""The chanrouter wire protocol, sans-IO: bytes in, events out; calls in, bytes out.

No I/O happens here (no trio, no os, no sockets); :mod:`plugin_sdk.session` adapts a
:class:`Connection` to trio streams. docs/PROTOCOL.md is the normative description.
"""

from ._connection import Connection as Connection
from ._errors import ErrorCode as ErrorCode
from ._errors import LocalProtocolError as LocalProtocolError
from ._errors import ProtocolError as ProtocolError
from ._errors import RemoteProtocolError as RemoteProtocolError
from ._events import ChannelClosed as ChannelClosed
from ._events import ChannelOpened as ChannelOpened
from ._events import ChannelReset as ChannelReset
from ._events import CreditGranted as CreditGranted
from ._events import DataReceived as DataReceived
from ._events import Event as Event
from ._events import GoAwayReceived as GoAwayReceived
from ._events import HelloReceived as HelloReceived
from ._events import MessageReceived as MessageReceived
from ._events import SessionEnded as SessionEnded
from ._frames import DEFAULT_MAX_CHANNELS as DEFAULT_MAX_CHANNELS
from ._frames import DEFAULT_MAX_DEPTH as DEFAULT_MAX_DEPTH
from ._frames import DEFAULT_MAX_FRAME as DEFAULT_MAX_FRAME
from ._frames import DEFAULT_WINDOW as DEFAULT_WINDOW
from ._frames import HELLO_MAX_FRAME as HELLO_MAX_FRAME
from ._frames import PROTOCOL_VERSIONS as PROTOCOL_VERSIONS
from ._frames import FrameType as FrameType
from ._frames import Role as Role
from ._refs import ChannelRef as ChannelRef
from ._refs import RefKind as RefKind
from ._state import CONTAINER_TYPES as CONTAINER_TYPES
from ._state import nesting as nesting

__all__ = [
    "CONTAINER_TYPES",
    "DEFAULT_MAX_CHANNELS",
    "DEFAULT_MAX_DEPTH",
    "DEFAULT_MAX_FRAME",
    "DEFAULT_WINDOW",
    "HELLO_MAX_FRAME",
    "PROTOCOL_VERSIONS",
    "ChannelClosed",
    "ChannelOpened",
    "ChannelRef",
    "ChannelReset",
    "Connection",
    "CreditGranted",
    "DataReceived",
    "ErrorCode",
    "Event",
    "FrameType",
    "GoAwayReceived",
    "HelloReceived",
    "LocalProtocolError",
    "MessageReceived",
    "ProtocolError",
    "RefKind",
    "RemoteProtocolError",
    "Role",
    "SessionEnded",
    "nesting",
]
