"""Splitting plugin output into bounded lines, whatever the chunking."""

from __future__ import annotations

import logging

from hypothesis import given, settings
from hypothesis import strategies as st

from router.exec._lines import CUT_MARK, LineSplitter
from router.exec._output import line_level


def split_all(data: bytes, cuts: list[int], max_line: int) -> list[bytes]:
    splitter = LineSplitter(max_line)
    lines: list[bytes] = []
    start = 0
    for cut in sorted(cuts):
        lines += splitter.feed(data[start:cut])
        start = max(start, cut)
    lines += splitter.feed(data[start:])
    return lines + splitter.flush()


def reference(data: bytes, max_line: int) -> list[bytes]:
    """The lines as a whole-buffer split would give them."""
    parts = data.split(b"\n")
    if parts[-1] == b"":
        parts.pop()
    out = []
    for part in parts:
        if len(part) > max_line:
            out.append(part[:max_line] + CUT_MARK)
        else:
            out.append(part.removesuffix(b"\r"))
    return out


output = st.lists(
    st.sampled_from([b"a", b"bb", b"\n", b"\r\n", b"x" * 7, b"\xff"]), max_size=40
).map(b"".join)


@settings(max_examples=200)
@given(output, st.lists(st.integers(0, 200), max_size=8), st.integers(1, 12))
def test_any_chunking_yields_the_same_bounded_lines(
    data: bytes, cuts: list[int], max_line: int
) -> None:
    lines = split_all(data, cuts, max_line)
    assert lines == reference(data, max_line)
    assert all(len(line) <= max_line + len(CUT_MARK) for line in lines)


def test_a_huge_line_without_newline_is_cut_at_once_and_its_rest_skipped() -> None:
    splitter = LineSplitter(max_line=4)
    assert splitter.feed(b"abcdef") == [b"abcd" + CUT_MARK]
    assert splitter.feed(b"g" * 10_000) == []
    assert splitter.feed(b"h\nnext\n") == [b"next"]


def test_a_leading_level_word_sets_the_log_level() -> None:
    assert line_level(b"ERROR boom", logging.INFO) == (logging.ERROR, b"boom")
    assert line_level(b"Traceback (most", logging.WARNING) == (logging.WARNING, b"Traceback (most")
    assert line_level(b"ERROR", logging.INFO) == (logging.INFO, b"ERROR")
