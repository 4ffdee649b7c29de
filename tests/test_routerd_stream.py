"""routerd's stream mode in process: stdin to route_stream to stdout, batched."""

from __future__ import annotations

import io
import json
import sys
from typing import Any

import pytest
import trio

import router
from plugin_sdk import Message
from router.builtins.host_mount import HostMount
from router.cli import _stream
from router.cli._stream import stream
from router.events import EventBus, EventKind


class StepCounter(trio.abc.Instrument):
    """Counts task steps: how often the scheduler ran some task."""

    def __init__(self) -> None:
        self.steps = 0

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        self.steps += 1


def _lines(count: int) -> bytes:
    lines = [
        json.dumps({"type": "container.create", "id": f"c{i}", "body": {"Image": "x"}})
        for i in range(count)
    ]
    return ("\n".join(lines) + "\n").encode()


async def _route_stdin(
    monkeypatch: pytest.MonkeyPatch, data: bytes, bus: EventBus
) -> list[dict[str, Any]]:
    # Buffers without a descriptor: routerd then reads and writes them directly.
    stdout = io.BytesIO()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(stdout))
    async with router.open([HostMount("/data /data")]) as r:
        await stream(r, "jsonl", trio.Event(), bus)
    return [json.loads(line) for line in stdout.getvalue().splitlines()]


async def test_a_stream_of_inputs_costs_no_scheduling_round_per_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    count = 3000
    counter = StepCounter()
    trio.lowlevel.add_instrument(counter)
    try:
        results = await _route_stdin(monkeypatch, _lines(count), EventBus())
    finally:
        trio.lowlevel.remove_instrument(counter)
    assert [r["id"] for r in results] == [f"c{i}" for i in range(count)]
    assert {r["status"] for r in results} == {"delivered"}
    # Inputs are pulled straight from what a read decoded, and results queued for the
    # writer without a checkpoint each: the tasks run once per batch, not per message.
    # (Handing each input and result over through a checkpoint took 3 steps a message.)
    assert counter.steps < count / 4, counter.steps


async def test_each_result_is_published_once_as_it_is_written(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bus = EventBus()
    with bus.subscribe(buffer=100) as watcher:
        results = await _route_stdin(monkeypatch, _lines(5) + b"not json\n", bus)
        events = [watcher.get_nowait() for _ in range(7)]
    assert bus.published == 6
    assert events[6] is None  # one each
    assert [e.kind for e in events if e] == [EventKind.RESULT] * 6
    assert [e.data for e in events if e] == results
    assert results[-1]["status"] == "failed" and "line 6" in results[-1]["reason"]


async def test_results_are_counted_as_published_even_with_nobody_watching(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bus = EventBus()
    await _route_stdin(monkeypatch, _lines(7), bus)
    assert bus.published == 7


async def test_a_stop_ends_reading_but_every_input_of_a_chunk_already_read_is_routed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 200 short lines come in one read; a stop after the first is pulled must not
    # lose the other 199: their bytes have left stdin, so they get their results.
    data = _lines(200) + _lines(5)  # the second read would bring more
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    reads: list[int] = []
    original = _stream._stdin_reader

    def counting_reader() -> Any:
        read = original()

        def counted(n: int) -> bytes:
            chunk: bytes = read(n)
            reads.append(len(chunk))
            return chunk

        return counted

    monkeypatch.setattr(_stream, "_stdin_reader", counting_reader)
    monkeypatch.setattr(_stream, "READ_CHUNK", len(data) - 10)
    source = _stream._Input("jsonl")
    items = source.items()
    first = await anext(items)
    source.stop()
    rest = [item async for item in items]
    ids = [item.id for item in [first, *rest] if isinstance(item, Message)]
    assert ids == [f"c{i}" for i in range(200)] + [f"c{i}" for i in range(4)]
    assert len(reads) == 1  # and nothing was read after the stop
