"""The application-layer test vectors of docs/PROTOCOL.md, produced by the real code.

:func:`conversation` plays a handshake, one batch of two calls, its answers, one ping,
and a third call cancelled by the router and answered as cancelled, between two sans-IO
connections and returns every frame by vector name, so the
test can check the document byte for byte and decode each frame back.
"""

from __future__ import annotations

from plugin_sdk import Message, PluginInfo, replace
from plugin_sdk.app import (
    FEATURE_CANCEL,
    Cancel,
    Ping,
    Ready,
    answer_entry,
    answers_to_wire,
    call_entry,
    calls_to_wire,
    pong,
)
from plugin_sdk.runner._serve import CANCELLED
from plugin_sdk.wire import ChannelRef, Connection, MessageReceived, RefKind, Role

VECTOR_INFO = PluginInfo("host-mount", ("container.create",), version="1.0", concurrency=2)
VECTOR_CALLS = (
    (1, Message("container.create", {"Image": "alpine"}, id="m1")),
    (2, Message("container.create", {"Image": "busybox"}, id="m2")),
)
VECTOR_FEATURES = (FEATURE_CANCEL,)
VECTOR_CANCELLED = (3, Message("container.create", {"Image": "alpine"}, id="m3"))
"""The third call: given up on by the router, cancelled, answered as cancelled."""
VECTOR_ANSWERS = tuple(
    (
        call_id,
        replace(
            Message(
                "container.create",
                {**message.body, "HostConfig": {"Binds": ["/data:/var/data"]}},
                id=message.id,
            )
        ),
    )
    for call_id, message in VECTOR_CALLS
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
    ready = Ready(VECTOR_INFO, features=VECTOR_FEATURES).to_wire()
    sent("ready", "plugin", plugin.send_message(control, ready))
    calls, data = host.open()
    sent("OPEN calls channel", "router", data)
    batch = calls_to_wire([call_entry(i, m) for i, m in VECTOR_CALLS])
    sent("call", "router", host.send_message(calls, batch))
    answers = answers_to_wire([answer_entry(i, r) for i, r in VECTOR_ANSWERS])
    sent("replies", "plugin", plugin.send_message(control, answers))
    sent("ping", "router", host.send_message(calls, Ping(ChannelRef(RefKind.SENDER)).to_wire()))
    reply = received[-1].payload["reply"].channel
    sent("pong", "plugin", plugin.send_message(reply, pong()))
    sent("CLOSE pong channel", "plugin", plugin.close(reply))
    sent(
        "call 3", "router", host.send_message(calls, calls_to_wire([call_entry(*VECTOR_CANCELLED)]))
    )
    sent("cancel", "router", host.send_message(calls, Cancel((VECTOR_CANCELLED[0],)).to_wire()))
    answer = answer_entry(VECTOR_CANCELLED[0], CANCELLED)
    sent("cancelled", "plugin", plugin.send_message(control, answers_to_wire([answer])))
    return frames


def hex_lines(data: bytes) -> list[str]:
    """The document's hex layout: the length prefix alone, then 16 bytes a line."""
    body = data[4:]
    lines = [data[:4].hex()]
    lines += [body[i : i + 16].hex(" ") for i in range(0, len(body), 16)]
    return lines


def document_blocks() -> str:
    """The ``app-vector`` blocks as docs/PROTOCOL.md shows them (to regenerate the doc)."""
    blocks = []
    for name, (sender, data) in conversation().items():
        first, *rest = hex_lines(data)
        rows = "".join(f"     {row}\n" for row in rest)
        blocks.append(f"```app-vector\nname: {name}\nsender: {sender}\nhex: {first}\n{rows}```\n")
    return "\n".join(blocks)
