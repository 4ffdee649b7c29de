"""``python -m plugin_sdk.testing [options] CMD [ARG...]``: the conformance check from a shell.

For authors of plugins in any language: it spawns the command as the router would and
prints what :func:`~plugin_sdk.testing.check_plugin` found. Exit status 0 when the
plugin conforms, 1 when it does not, 2 for a usage error. argparse, not click: the SDK
keeps to the standard library beside msgpack and trio.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

import trio

from ..message import Message, MessageFormatError
from ._conformance import ConformanceReport, check_plugin

EXIT_CONFORMS = 0
EXIT_PROBLEMS = 1
EXIT_USAGE = 2


def _message(text: str) -> Message:
    """A ``--message`` value: one message as JSON, ``{"type": ..., "body": ...}``."""
    try:
        return Message.from_wire(json.loads(text), where="--message")
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not JSON ({exc}): {text!r}") from None
    except MessageFormatError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m plugin_sdk.testing",
        usage="%(prog)s [-h] [--message JSON]... [--timeout SECONDS] [--] CMD [ARG...]",
        description=(
            "Spawn a plugin as routerd would (FD 3/4, CHANROUTER_PLUGIN=1) and check it "
            "follows docs/PROTOCOL.md: handshake, answers, pings, unknown ops, cancels, exit."
        ),
        epilog="Exit status: 0 it conforms, 1 it does not, 2 usage error.",
    )
    parser.add_argument(
        "--message",
        "-m",
        action="append",
        type=_message,
        default=[],
        metavar="JSON",
        help=(
            'a message to call it with, e.g. \'{"type": "container.create", "body": {}}\' '
            "(repeatable; default: one empty-bodied message per exact type it accepts)"
        ),
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="how long each step may take (default: 10)",
    )
    parser.add_argument("command", nargs=argparse.REMAINDER, metavar="CMD [ARG...]")
    return parser


def render(report: ConformanceReport) -> str:
    """The report as the command prints it."""
    lines = [f"plugin command: {report.command}"]
    info = report.info
    if info is not None:
        lines.append(
            f"plugin: {info.name} {info.version} accepts {', '.join(info.accepts)}"
            f" (concurrency {info.concurrency}, timeout {info.timeout:g}s)"
        )
        lines.append(f"features: {', '.join(report.features) or 'none'}")
    # One line per outcome, repeats counted: a batch of 64 alike calls is one line.
    outcomes: list[tuple[str, int]] = []
    for message, reply in report.replies:
        reason = f": {reply.reason}" if reply.reason else ""
        line = f"{message.type} -> {reply.verdict} with {len(reply.messages)} message(s){reason}"
        if outcomes and outcomes[-1][0] == line:
            outcomes[-1] = (line, outcomes[-1][1] + 1)
        else:
            outcomes.append((line, 1))
    lines += [f"  {line}" + (f" (x{count})" if count != 1 else "") for line, count in outcomes]
    if report.exit_code is not None:
        lines.append(f"exit status after FD 3 closed: {report.exit_code}")
    if report.ok:
        lines.append("conforms")
    else:
        lines.append(f"does not conform ({len(report.problems)} problem(s)):")
        lines += [f"  - {problem}" for problem in report.problems]
        tail = report.stderr.strip()[-2000:]
        if tail:
            lines.append("its stderr ended with:")
            lines += [f"  {line}" for line in tail.splitlines()]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the check; return the exit status."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse's own exit: --help (0) or a usage error (2)
        return int(exc.code or 0)
    command: list[str] = args.command
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        parser.print_usage(sys.stderr)
        print(f"{parser.prog}: error: the plugin command is missing", file=sys.stderr)
        return EXIT_USAGE
    if not args.timeout > 0:
        print(f"{parser.prog}: error: --timeout must be > 0 seconds", file=sys.stderr)
        return EXIT_USAGE
    report = trio.run(
        lambda: check_plugin(command, args.message, timeout=args.timeout),
    )
    print(render(report))
    return EXIT_CONFORMS if report.ok else EXIT_PROBLEMS


if __name__ == "__main__":
    sys.exit(main())
