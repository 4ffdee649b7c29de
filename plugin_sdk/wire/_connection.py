"""The sans-IO connection: bytes in, events out; calls in, bytes out.

Rules this file enforces (docs/PROTOCOL.md is the normative text):

* Framing: 4-byte big-endian length, then one msgpack array ``[type, ...]``. A length
  above the receive limit fails as soon as the 4 prefix bytes are in (65536 until the
  peer's HELLO is processed, then our ``max_frame``).
* Handshake: each side sends HELLO first. Until the peer's HELLO only HELLO or GOAWAY
  may arrive; we create and send nothing on channels until we have it.
* Channels: initiator ids odd, responder ids even, each side's strictly increasing in
  wire order. A channel is written by one side and read by the other. It is live from
  its creating frame until CLOSE (by the writer) or RESET (by either) is sent or
  received. Frames for an id that existed but ended are ignored; frames for ids that
  never existed are a PROTOCOL_ERROR.
* Flow control: per channel byte credit; the cost of MESSAGE/DATA is the body length.
  A writer may send while its credit is > 0 (so it can overshoot by one frame).
* A RemoteProtocolError kills the connection: later receive_data raises it again.
  A LocalProtocolError leaves no trace: no bytes, no state change.
"""

from __future__ import annotations

from ._receiving import Receiving
from ._sending import Sending

__all__ = ["Connection"]


class Connection(Receiving, Sending):
    """One end of a chanrouter wire session, without any I/O.

    Feed received bytes to :meth:`receive_data` and act on the events it returns;
    every sending method returns the bytes to write to the transport, in call order.
    See :class:`ConnectionState` for the constructor's arguments.
    """
