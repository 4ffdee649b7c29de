"""Human-readable text for admin replies: the tables and lines routerctl prints.

Pure functions from reply maps (the wire shapes in docs/PROTOCOL.md) to strings, so
``--json`` and the tables are two views of the same data and tests need no daemon.
Anything missing from a reply shows as ``-`` rather than failing: an older or newer
daemon may send fewer or more fields.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "format_duration",
    "render_event",
    "render_plugins",
    "render_result",
    "render_stats",
    "table",
]


def format_duration(seconds: object) -> str:
    """``1.2ms``-style text for a duration in seconds; ``-`` when unknown."""
    if not isinstance(seconds, int | float) or isinstance(seconds, bool):
        return "-"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f}us"
    if seconds < 1:
        return f"{seconds * 1e3:.1f}ms"
    return f"{seconds:.2f}s"


def _cell(value: object) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value) or "-"
    return str(value)


def _maps(value: object) -> list[Mapping[str, Any]]:
    """The maps in a list field (anything else in it is skipped)."""
    if not isinstance(value, list | tuple):
        return []
    return [v for v in value if isinstance(v, Mapping)]


def _sized(value: object) -> int:
    return len(value) if isinstance(value, list | tuple) else 0


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns separated by two spaces; no trailing spaces."""
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    lines = []
    for row in [list(headers), *rows]:
        line = "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row))
        lines.append(line.rstrip())
    return "\n".join(lines)


_PLUGIN_COLUMNS = (
    ("#", "position"),
    ("NAME", "name"),
    ("KIND", "kind"),
    ("ACCEPTS", "accepts"),
    ("PRIO", "priority"),
    ("STATE", "state"),
    ("PID", "pid"),
    ("RESTARTS", "restarts"),
    ("HANDLED", "handled"),
    ("DROPPED", "dropped"),
    ("FAILED", "failed"),
    ("P50", "p50"),
    ("P99", "p99"),
)


def render_plugins(reply: Mapping[str, Any]) -> str:
    """The ``plugins`` table, one row per plugin in pipeline order."""
    plugins = _maps(reply.get("plugins"))
    if not plugins:
        return "no plugins: every message is delivered unchanged"
    rows = []
    for p in plugins:
        row = []
        for _, key in _PLUGIN_COLUMNS:
            value = p.get(key)
            row.append(format_duration(value) if key in ("p50", "p99") else _cell(value))
        rows.append(row)
    return table([h for h, _ in _PLUGIN_COLUMNS], rows)


def _compact(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, default=repr)


def render_result(result: Mapping[str, Any]) -> str:
    """A routed message's result: status, who decided, the per-hop trace and the outputs."""
    lines = [f"{_cell(result.get('status'))}  (input {_cell(result.get('id'))})"]
    if result.get("by") or result.get("reason"):
        lines.append(f"by {_cell(result.get('by'))}: {_cell(result.get('reason'))}")
    trace = _maps(result.get("trace"))
    if trace:
        lines.append("trace:")
        rows = [
            [
                _cell(h.get("plugin")),
                _cell(h.get("type")),
                _cell(h.get("verdict")),
                format_duration(h.get("duration")),
                _cell(h.get("reason")),
            ]
            for h in trace
        ]
        body = table(["PLUGIN", "TYPE", "VERDICT", "DURATION", "REASON"], rows)
        lines.extend("  " + line for line in body.splitlines())
    else:
        lines.append("trace: no plugin accepts this type")
    messages = _maps(result.get("messages"))
    lines.append(f"outputs: {len(messages)}")
    for m in messages:
        lines.append(f"  {_cell(m.get('type'))} {_compact(m.get('body'))}")
    return "\n".join(lines)


def render_event(event: Mapping[str, Any]) -> str:
    """One ``watch`` line: local time, event name, plugin, then the details."""
    stamp = event.get("time")
    when = "--:--:--.---"
    if isinstance(stamp, int | float) and not isinstance(stamp, bool):
        try:
            clock = time.strftime("%H:%M:%S", time.localtime(stamp))
            when = f"{clock}.{int(stamp * 1000) % 1000:03d}"
        except (OverflowError, ValueError, OSError):
            pass
    kind = _cell(event.get("event"))
    if kind == "result":
        return (
            f"{when} result {_cell(event.get('status'))} id={_cell(event.get('id'))}"
            f" by={_cell(event.get('by'))} reason={_cell(event.get('reason'))}"
            f" hops={_sized(event.get('trace'))} outputs={_sized(event.get('messages'))}"
        )
    details = " ".join(
        f"{k}={_compact(v) if isinstance(v, dict | list) else _cell(v)}"
        for k, v in sorted(event.items(), key=lambda kv: str(kv[0]))
        if k not in ("event", "plugin", "time")
    )
    plugin = event.get("plugin")
    parts = (when, kind, None if plugin is None else _cell(plugin), details)
    return " ".join(part for part in parts if part)


def render_stats(reply: Mapping[str, Any]) -> str:
    """``key: value`` lines for the ``stats`` reply, nested maps indented."""
    lines: list[str] = []

    def walk(mapping: Mapping[str, Any], indent: str) -> None:
        for key, value in mapping.items():
            if key == "ok":
                continue
            if isinstance(value, Mapping):
                lines.append(f"{indent}{key}:")
                walk(value, indent + "  ")
            elif isinstance(value, float):
                lines.append(f"{indent}{key}: {value:.3f}")
            else:
                lines.append(f"{indent}{key}: {_cell(value)}")

    walk(reply, "")
    return "\n".join(lines)
