"""The application layer of the plugin protocol: handshake, calls, replies, pings.

Pure data and parsing (no trio, no I/O), shared by the plugin runner (plugin side) and
the process supervisor (router side). docs/PROTOCOL.md, "Application layer: plugins",
is the normative description.
"""

from ._calls import Call as Call
from ._calls import Ping as Ping
from ._calls import Request as Request
from ._calls import UnknownRequest as UnknownRequest
from ._calls import check_pong as check_pong
from ._calls import parse_reply as parse_reply
from ._calls import parse_request as parse_request
from ._calls import pong as pong
from ._calls import reply_to_wire as reply_to_wire
from ._errors import AppProtocolError as AppProtocolError
from ._handshake import APP_VERSION as APP_VERSION
from ._handshake import SDK_ID as SDK_ID
from ._handshake import SUPPORTED_APP_VERSIONS as SUPPORTED_APP_VERSIONS
from ._handshake import Fail as Fail
from ._handshake import Handshake as Handshake
from ._handshake import Ready as Ready
from ._handshake import parse_handshake as parse_handshake
