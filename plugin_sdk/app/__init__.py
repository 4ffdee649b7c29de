"""The application layer of the plugin protocol: handshake, call batches, answers, pings.

Pure data and parsing (no trio, no I/O), shared by the plugin runner (plugin side) and
the process supervisor (router side). docs/PROTOCOL.md, "Application layer: plugins",
is the normative description.
"""

from ._calls import ANSWERS_NESTING as ANSWERS_NESTING
from ._calls import CALLS_NESTING as CALLS_NESTING
from ._calls import CallBatch as CallBatch
from ._calls import Cancel as Cancel
from ._calls import Ping as Ping
from ._calls import Request as Request
from ._calls import UnknownRequest as UnknownRequest
from ._calls import answer_entry as answer_entry
from ._calls import answers_to_wire as answers_to_wire
from ._calls import call_entry as call_entry
from ._calls import calls_to_wire as calls_to_wire
from ._calls import cancel_to_wire as cancel_to_wire
from ._calls import check_pong as check_pong
from ._calls import message_nesting as message_nesting
from ._calls import parse_answers as parse_answers
from ._calls import parse_request as parse_request
from ._calls import pong as pong
from ._errors import AppProtocolError as AppProtocolError
from ._handshake import APP_VERSION as APP_VERSION
from ._handshake import FEATURE_CANCEL as FEATURE_CANCEL
from ._handshake import SDK_ID as SDK_ID
from ._handshake import SUPPORTED_APP_VERSIONS as SUPPORTED_APP_VERSIONS
from ._handshake import Fail as Fail
from ._handshake import Handshake as Handshake
from ._handshake import Ready as Ready
from ._handshake import parse_handshake as parse_handshake
