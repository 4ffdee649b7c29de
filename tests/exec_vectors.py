"""The application-layer test vectors of docs/PROTOCOL.md, produced by the real code.

:func:`conversation` plays a handshake, one call and one ping between two sans-IO
connections and returns every frame by vector name, so the test can check the document
byte for byte and decode each frame back.
"""

from __future__ import annotations

from plugin_sdk import Message, PluginInfo, replace
from plugin_sdk.app import Call, Ping, Ready, pong, reply_to_wire
from plugin_sdk.wire import ChannelRef, Connection, MessageReceived, RefKind, Role

VECTOR_INFO = PluginInfo("host-mount", ("container.create",), version="1.0")
VECTOR_CALL = Message("container.create", {"Image": "alpine"}, id="m1")
VECTOR_REPLY = Message(
    "container.create",
    {"Image": "alpine", "HostConfig": {"Binds": ["/data:/var/data"]}},
    id="m1",
)


def conversation() -> dict[str, tuple[str, bytes]]:
    """Vector name -> (sender, frame bytes), in the order the frames are sent."""
    host, plugin = Connection(Role.INITIATOR), Connection(Role.RESPONDER)
    plugin.receive_data(host.hello())
    host.receive_data(plugin.hello())
    frames: dict[str, tuple[str, bytes]] = {}
    received: list[MessageReceived] = []

    def sent(name: str, sender: str, data: bytes) -> None:
        frames[name] = (sender, data)
        peer = host if sender == "plugin" else plugin
        received.extend(e for e in peer.receive_data(data) if isinstance(e, MessageReceived))

    control, data = plugin.open()
    sent("OPEN control channel", "plugin", data)
    sent("ready", "plugin", plugin.send_message(control, Ready(VECTOR_INFO).to_wire()))
    calls, data = host.open()
    sent("OPEN calls channel", "router", data)
    call = Call(VECTOR_CALL, ChannelRef(RefKind.SENDER)).to_wire()
    sent("call", "router", host.send_message(calls, call))
    reply = received[-1].payload["reply"].channel
    sent("reply", "plugin", plugin.send_message(reply, reply_to_wire(replace(VECTOR_REPLY))))
    sent("CLOSE reply channel", "plugin", plugin.close(reply))
    sent("ping", "router", host.send_message(calls, Ping(ChannelRef(RefKind.SENDER)).to_wire()))
    sent("pong", "plugin", plugin.send_message(received[-1].payload["reply"].channel, pong()))
    return frames


def hex_lines(data: bytes) -> list[str]:
    """The document's hex layout: the length prefix alone, then 16 bytes a line."""
    body = data[4:]
    lines = [data[:4].hex()]
    lines += [body[i : i + 16].hex(" ") for i in range(0, len(body), 16)]
    return lines
