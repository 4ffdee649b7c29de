"""routerctl's text views: every field shows, missing ones show as '-', nothing crashes."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from router.admin.render import (
    format_duration,
    render_event,
    render_plugins,
    render_result,
    render_stats,
    table,
)


def test_durations_pick_a_readable_unit() -> None:
    assert format_duration(0.0000215) == "22us"
    assert format_duration(0.0012) == "1.2ms"
    assert format_duration(2.5) == "2.50s"
    assert format_duration(None) == "-"
    assert format_duration(True) == "-"


def test_table_aligns_columns_without_trailing_spaces() -> None:
    text = table(["A", "BB"], [["xxx", "y"], ["z", ""]])
    assert text.splitlines() == ["A    BB", "xxx  y", "z"]


def test_plugins_table_has_every_column_in_pipeline_order() -> None:
    row: dict[str, Any] = {
        "position": 0,
        "name": "audit",
        "kind": "exec",
        "accepts": ["container.*", "image.pull"],
        "priority": 5,
        "state": "restarting",
        "pid": 4242,
        "restarts": 2,
        "handled": 10,
        "dropped": 1,
        "failed": 3,
        "p50": 0.0004,
        "p99": 0.0019,
    }
    second = {"position": 1, "name": "log", "kind": "builtin", "accepts": ["*"]}
    lines = render_plugins({"plugins": [row, second]}).splitlines()
    assert lines[0].split() == [
        "#",
        "NAME",
        "KIND",
        "ACCEPTS",
        "PRIO",
        "STATE",
        "PID",
        "RESTARTS",
        "HANDLED",
        "DROPPED",
        "FAILED",
        "P50",
        "P99",
    ]
    assert lines[1].split() == [
        "0",
        "audit",
        "exec",
        "container.*,image.pull",
        "5",
        "restarting",
        "4242",
        "2",
        "10",
        "1",
        "3",
        "400us",
        "1.9ms",
    ]
    assert lines[2].split()[:4] == ["1", "log", "builtin", "*"]
    assert lines[2].split()[4:] == ["-"] * 9


def test_empty_pipeline_says_so() -> None:
    assert "no plugins" in render_plugins({"plugins": []})


def test_result_shows_status_trace_and_outputs() -> None:
    text = render_result(
        {
            "id": "m-1",
            "status": "dropped",
            "by": "authz",
            "reason": "rule 1 denies",
            "messages": [{"type": "audit.event", "body": {"b": 1, "a": [2]}}],
            "trace": [
                {
                    "plugin": "authz",
                    "type": "container.create",
                    "verdict": "drop",
                    "duration": 0.00003,
                    "reason": "rule 1 denies",
                }
            ],
        }
    )
    lines = text.splitlines()
    assert lines[0] == "dropped  (input m-1)"
    assert lines[1] == "by authz: rule 1 denies"
    assert lines[3].split() == ["PLUGIN", "TYPE", "VERDICT", "DURATION", "REASON"]
    assert lines[4].split() == ["authz", "container.create", "drop", "30us", "rule", "1", "denies"]
    assert lines[-2:] == ["outputs: 1", '  audit.event {"a":[2],"b":1}']


def test_result_without_hops_says_no_plugin_accepted_it() -> None:
    text = render_result({"id": "m", "status": "delivered", "messages": [], "trace": []})
    assert "no plugin accepts this type" in text


def test_plugin_event_line_names_event_plugin_and_details() -> None:
    line = render_event({"event": "plugin.crashed", "plugin": "audit", "time": 0.0, "pid": 7})
    assert line.split()[1:] == ["plugin.crashed", "audit", "pid=7"]


def test_result_event_line_summarises_the_result() -> None:
    line = render_event(
        {"event": "result", "plugin": None, "time": 1.5, "id": "x", "status": "failed"}
    )
    assert "result failed id=x by=- reason=- hops=0 outputs=0" in line


def test_stats_nest_and_skip_ok() -> None:
    text = render_stats({"ok": True, "uptime": 1.23456, "admin": {"requests": 3}})
    assert text.splitlines() == ["uptime: 1.235", "admin:", "  requests: 3"]


_wire = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda kids: (
        st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=5), kids, max_size=3)
    ),
    max_leaves=12,
)
_keys = st.sampled_from(
    ["event", "plugin", "time", "id", "status", "trace", "messages", "by", "plugins"]
)


@settings(max_examples=100)
@given(st.dictionaries(_keys | st.text(max_size=4), _wire, max_size=8))
def test_renderers_accept_any_map_shape(reply: dict[str, Any]) -> None:
    # A newer or older daemon may send other shapes: show what there is, never crash.
    for render in (render_event, render_stats, render_result, render_plugins):
        assert isinstance(render(reply), str)
