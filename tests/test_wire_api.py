"""The public surface of plugin_sdk.wire and its no-I/O rule."""

from __future__ import annotations

import ast
import pathlib

import plugin_sdk.wire as wire
from plugin_sdk.wire import ChannelRef, ErrorCode, FrameType, RefKind, Role

WIRE_DIR = pathlib.Path(wire.__file__).resolve().parent


def test_every_public_name_is_exported_and_documented() -> None:
    public = {n for n in vars(wire) if not n.startswith("_")} - {"annotations"}
    assert set(wire.__all__) == public
    for name in wire.__all__:
        obj = getattr(wire, name)
        if isinstance(obj, type):
            assert obj.__doc__, name


def test_the_adapter_api_names_exist() -> None:
    for name in (
        "hello",
        "receive_data",
        "open",
        "send_message",
        "send_data",
        "close",
        "reset",
        "acknowledge",
        "credit",
        "goaway",
        "open_channels",
        "is_writer",
        "data_to_send",
    ):
        assert hasattr(wire.Connection, name), name


def test_codes_are_the_documented_numbers() -> None:
    assert [(c.name, int(c)) for c in ErrorCode] == [
        ("NO_ERROR", 0),
        ("PROTOCOL_ERROR", 1),
        ("FRAME_TOO_LARGE", 2),
        ("VERSION_MISMATCH", 3),
        ("FLOW_CONTROL", 4),
        ("LIMIT_EXCEEDED", 5),
        ("CANCELLED", 6),
        ("TRUNCATED", 7),
        ("INTERNAL_ERROR", 8),
        ("APPLICATION_ERROR", 9),
    ]
    assert [int(t) for t in FrameType] == list(range(8))
    assert [(k.name, int(k)) for k in RefKind] == [("SENDER", 1), ("RECEIVER", 2), ("STREAM", 3)]
    assert {r.name for r in Role} == {"INITIATOR", "RESPONDER"}


def test_a_new_channel_ref_is_unbound() -> None:
    ref = ChannelRef(RefKind.STREAM)
    assert ref.channel is None
    assert ref.author_writes
    assert not ChannelRef(RefKind.SENDER).author_writes


def test_wire_does_no_io_it_imports_only_msgpack_and_pure_stdlib() -> None:
    # gc and sys: the depth walk asks the garbage collector for a level's items (on
    # CPython, as sys.implementation says); neither does I/O.
    allowed = {
        "__future__",
        "collections",
        "dataclasses",
        "enum",
        "gc",
        "msgpack",
        "struct",
        "sys",
        "typing",
    }
    for path in sorted(WIRE_DIR.glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots = {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                roots = {node.module.split(".")[0]}
            else:
                continue
            assert roots <= allowed, (path.name, roots - allowed)
