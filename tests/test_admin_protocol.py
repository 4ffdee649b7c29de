"""The admin request schema: good requests parse, bad ones say why, nothing else escapes."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from router.admin.protocol import OPS, AdminRequestError, fail, ok, parse_request


def test_every_op_without_arguments_needs_only_op() -> None:
    for op in ("plugins", "stats", "shutdown"):
        assert parse_request({"op": op, "reply": object()}).args == {}


def test_add_builtin_fills_defaults() -> None:
    req = parse_request({"op": "add", "plugin": "log", "option": "debug"})
    assert req.args == {
        "plugin": "log",
        "exec": None,
        "option": "debug",
        "name": None,
        "position": None,
        "priority": None,
    }


def test_add_exec_with_position_and_name() -> None:
    req = parse_request({"op": "add", "exec": "python -m x", "position": 0, "name": "x"})
    assert req.args["exec"] == "python -m x"
    assert req.args["position"] == 0
    assert req.args["name"] == "x"


@pytest.mark.parametrize(
    ("payload", "needle"),
    [
        ([1, 2], "must be a map"),
        ({"reply": 1}, "needs an 'op'"),
        ({"op": "explode"}, "unknown op 'explode'"),
        ({"op": "plugins", "verbose": True}, "unknown field(s) 'verbose'"),
        ({"op": "add"}, "exactly one of 'plugin'"),
        ({"op": "add", "plugin": "log", "exec": "x"}, "exactly one of 'plugin'"),
        ({"op": "add", "exec": "  "}, "non-empty command"),
        ({"op": "add", "exec": "x", "option": "y"}, "'option' goes with 'plugin'"),
        ({"op": "add", "plugin": "log", "position": -1}, "'position' must be >= 0"),
        ({"op": "add", "plugin": "log", "position": True}, "must be int, got bool"),
        ({"op": "add", "plugin": "log", "name": "a b"}, "without spaces"),
        ({"op": "remove"}, "missing required field 'name'"),
        ({"op": "restart", "name": 3}, "must be str, got int"),
        ({"op": "move", "name": "a"}, "missing required field 'position'"),
        ({"op": "reorder", "names": []}, "at least one plugin"),
        ({"op": "reorder", "names": ["a", "a"]}, "named twice"),
        ({"op": "reorder", "names": ["a", 1]}, "names[1]"),
        ({"op": "send", "message": {"body": 1}}, "'type' must be a non-empty string"),
        ({"op": "watch", "results": "yes"}, "must be bool"),
    ],
)
def test_bad_requests_are_refused_with_a_reason(payload: Any, needle: str) -> None:
    with pytest.raises(AdminRequestError) as info:
        parse_request(payload)
    assert needle in str(info.value)


def test_send_builds_a_message() -> None:
    req = parse_request({"op": "send", "message": {"type": "a.b", "body": {"k": 1}}})
    assert req.args["message"].type == "a.b"
    assert req.args["message"].body == {"k": 1}


def test_reply_helpers_shape() -> None:
    assert ok(n=1) == {"ok": True, "n": 1}
    assert fail("no") == {"ok": False, "error": "no"}


_scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=8) | st.binary(max_size=8)
_values = st.recursive(
    _scalars,
    lambda kids: (
        st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=6), kids, max_size=3)
    ),
    max_leaves=10,
)
_KNOWN_FIELDS = ("op", "plugin", "exec", "option", "name", "position", "priority", "names")
_keys = st.sampled_from((*_KNOWN_FIELDS, "message", "results", "reply")) | st.text(max_size=6)


@settings(max_examples=200)
@given(
    op=st.sampled_from(OPS) | _values,
    fields=st.dictionaries(_keys, _values, max_size=6),
)
def test_any_request_map_parses_or_raises_admin_request_error(op: Any, fields: Any) -> None:
    payload = dict(fields)
    payload["op"] = op
    try:
        req = parse_request(payload)
    except AdminRequestError as exc:
        assert str(exc)
    else:
        assert req.op in OPS


@settings(max_examples=100)
@given(_values)
def test_any_value_parses_or_raises_admin_request_error(value: Any) -> None:
    with contextlib.suppress(AdminRequestError):
        parse_request(value)
