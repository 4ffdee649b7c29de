"""The admin example in docs/PROTOCOL.md is byte-exact: the wire core makes and reads it."""

from __future__ import annotations

import pathlib
import re

from plugin_sdk.wire import ChannelClosed, ChannelOpened, ChannelRef, Connection, RefKind, Role
from router.admin.protocol import OPS, parse_request

PROTOCOL_MD = pathlib.Path(__file__).resolve().parent.parent / "docs" / "PROTOCOL.md"


def _admin_section() -> str:
    text = PROTOCOL_MD.read_text()
    start = text.index("\n## Admin interface\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def _doc_vectors() -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for block in re.findall(r"```admin-vector\n(.*?)```", _admin_section(), flags=re.S):
        name = re.search(r"^name: (.*)$", block, flags=re.M)
        assert name is not None, block
        found[name.group(1).strip()] = bytes.fromhex("".join(block.split("hex:", 1)[1].split()))
    return found


def test_the_documented_exchange_is_what_the_wire_core_produces() -> None:
    client, daemon = Connection(Role.INITIATOR), Connection(Role.RESPONDER)
    client_hello, daemon_hello = client.hello(), daemon.hello()
    client.receive_data(daemon_hello)
    daemon.receive_data(client_hello)

    channel, opened = client.open()
    request = client.send_message(channel, {"op": "plugins", "reply": ChannelRef(RefKind.SENDER)})
    events = daemon.receive_data(opened + request)
    assert events[0] == ChannelOpened(1)
    payload = events[1].payload  # type: ignore[union-attr]
    assert parse_request(payload).op == "plugins"
    reply_channel = payload["reply"].channel
    answer = daemon.send_message(reply_channel, {"ok": True, "plugins": []})
    closed = daemon.close(reply_channel)
    assert client.receive_data(answer + closed)[-1] == ChannelClosed(3)

    assert _doc_vectors() == {
        "OPEN request channel": opened,
        "plugins request": request,
        "plugins reply": answer,
        "CLOSE reply channel": closed,
    }


def test_every_op_is_documented() -> None:
    section = _admin_section()
    for op in OPS:
        assert f"| `{op}` |" in section, op
