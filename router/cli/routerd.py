"""``routerd``: the chanrouter daemon.

Stream mode (the default) reads messages on stdin and writes one result per input on
stdout, in input order, then drains and exits 0 at end of input. Daemon mode
(``--serve``, or an admin socket with no stream on stdin) routes only what arrives
over the admin socket, until SIGTERM or SIGINT.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import signal
import stat
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import click
import trio

from router.engine import Router
from router.events import EventBus, result_event
from router.result import Result

from .errors import CliError
from .streamio import BadInput, Item, encode_json_line, encode_msgpack, make_decoder

__all__ = ["PluginArg", "main"]

log = logging.getLogger("chanrouter.routerd")

READ_CHUNK = 1 << 16


@dataclass(frozen=True, slots=True)
class PluginArg:
    """One ``--plugin NAME OPT`` or ``--plugin-exec CMD``, in command-line order."""

    kind: str  # "builtin" or "exec"
    name: str  # builtin name, or the command line for exec
    option: str = ""

    def describe(self) -> str:
        """How the operator wrote it, for error messages."""
        if self.kind == "exec":
            return f"--plugin-exec {self.name!r}"
        return f"--plugin {self.name} {self.option!r}"


class _OrderedPlugins(click.Command):
    """Remembers the command-line order of ``--plugin`` and ``--plugin-exec``.

    click groups each option's values separately; pipeline order is the order the
    operator wrote them in, across both options, so we note it from the raw args.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        order: list[str] = []
        i = 0
        while i < len(args):
            arg = args[i]
            if arg == "--":
                break
            if arg == "--plugin":
                order.append("builtin")
                i += 3
                continue
            if arg == "--plugin-exec":
                order.append("exec")
                i += 2
                continue
            if arg.startswith("--plugin-exec="):
                order.append("exec")
            i += 1
        ctx.meta["chanrouter.plugin_order"] = order
        return super().parse_args(ctx, args)


def ordered_plugins(
    order: Sequence[str], builtins: Sequence[tuple[str, str]], execs: Sequence[str]
) -> list[PluginArg]:
    """Interleave builtin and exec plugin arguments back into command-line order."""
    b, e = iter(builtins), iter(execs)
    out: list[PluginArg] = []
    for kind in order:
        if kind == "builtin":
            name, opt = next(b)
            out.append(PluginArg("builtin", name, opt))
        else:
            out.append(PluginArg("exec", next(e)))
    # Anything the raw scan missed (it cannot, short of odd quoting) still runs, last.
    out += [PluginArg("builtin", n, o) for n, o in b]
    out += [PluginArg("exec", c) for c in e]
    return out


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper()),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def build_handles(plugins: Sequence[PluginArg], events: EventBus | None = None) -> list[Any]:
    """Load every plugin named on the command line; bad names/options are usage errors.

    ``--plugin NAME:INSTANCE OPT`` loads builtin NAME under the name INSTANCE, so two
    instances of one builtin (two authz rule sets, say) can share a pipeline.
    """
    from plugin_sdk import OptionError, PluginDefinitionError, PluginInfoError
    from router.builtins.registry import PluginLoadError, load
    from router.exec import ExecHandle
    from router.handle import InProcessHandle

    handles: list[Any] = []
    for arg in plugins:
        if arg.kind == "builtin":
            name, _, instance = arg.name.partition(":")
            try:
                plugin = load(name, arg.option, instance_name=instance or None)
            except (PluginLoadError, OptionError, PluginInfoError, PluginDefinitionError) as exc:
                raise click.UsageError(f"{arg.describe()}: {exc}") from None
            handles.append(InProcessHandle(plugin))
        else:
            if not arg.name.strip():
                raise click.UsageError("--plugin-exec needs a command, got an empty string")
            handles.append(ExecHandle(arg.name, events=events))
    return handles


def _stdin_is_stream() -> bool:
    """Whether stdin carries a message stream (a pipe, file or socket, not a terminal)."""
    try:
        mode = os.fstat(0).st_mode
    except OSError:
        return False
    if os.isatty(0):
        return False
    # /dev/null is a character device: a daemon started by a service manager.
    return not stat.S_ISCHR(mode)


def _stdin_reader() -> Callable[[int], bytes]:
    """A blocking ``read(n)`` for stdin, run in a worker thread.

    os.read on the real descriptor, not the buffered sys.stdin: a read abandoned at
    SIGTERM must hold no Python-level lock (a BufferedReader's lock held at interpreter
    exit aborts the process). Under click's CliRunner stdin is an in-memory buffer
    with no descriptor; read that directly.
    """
    try:
        fd = sys.stdin.fileno()
    except (AttributeError, OSError, ValueError):
        buffer = sys.stdin.buffer
        read: Callable[[int], bytes] = getattr(buffer, "read1", buffer.read)
        return read
    return functools.partial(os.read, fd)


async def _read_stdin(fmt: str) -> AsyncIterator[Item]:
    decoder = make_decoder(fmt)
    read = _stdin_reader()
    while True:
        # A thread per 64 KiB chunk works for pipes, files and ttys alike and never puts
        # the shared stdin file description in non-blocking mode.
        chunk = await trio.to_thread.run_sync(read, READ_CHUNK, abandon_on_cancel=True)
        for item in decoder.feed(chunk):
            yield item
        if not chunk:
            return


async def _write_results(receive: trio.MemoryReceiveChannel[dict[str, Any]], fmt: str) -> None:
    encode = encode_msgpack if fmt == "msgpack" else encode_json_line
    out = sys.stdout.buffer
    async for first in receive:
        batch = [encode(first)]
        # Coalesce whatever else is ready into one write.
        while True:
            try:
                batch.append(encode(receive.receive_nowait()))
            except (trio.WouldBlock, trio.EndOfChannel):
                break
        data = b"".join(batch)

        def write(data: bytes = data) -> None:
            out.write(data)
            out.flush()

        await trio.to_thread.run_sync(write)


async def _run(
    plugins: Sequence[PluginArg],
    *,
    fmt: str,
    max_in_flight: int,
    hop_limit: int,
    serve: bool,
    admin_socket: str | None,
    print_plan: bool,
) -> int:
    import router

    bus = EventBus()
    handles = build_handles(plugins, bus)
    try:
        async with router.open(
            plugins=handles, hop_limit=hop_limit, max_in_flight=max_in_flight
        ) as r:
            plan_text = r.plan.describe()
            if print_plan:
                click.echo(plan_text)
                return 0
            log.info("pipeline order:\n%s", plan_text)
            async with trio.open_nursery() as nursery:
                stop = trio.Event()
                nursery.start_soon(_watch_signals, stop)
                if admin_socket is not None:
                    from router.admin import serve_admin

                    await nursery.start(
                        functools.partial(serve_admin, r, admin_socket, stop, events=bus)
                    )
                if serve:
                    log.info("serving until SIGTERM or SIGINT")
                    await stop.wait()
                else:
                    await _stream(r, fmt, stop, bus)
                nursery.cancel_scope.cancel()
    except Exception as exc:
        start_error = _startup_error(exc)
        if start_error is None:
            raise
        raise CliError(start_error) from None
    return 0


def _startup_error(exc: BaseException) -> str | None:
    """The operator-facing text of an expected failure, or None for a bug.

    Expected: a plugin that cannot start or describes itself badly, an unusable admin
    socket, a broken pipe or other OS error. trio wraps errors raised in nurseries in
    exception groups; a group counts when every error in it is expected.
    """
    from plugin_sdk import PluginInfoError
    from router.admin import AdminSocketError
    from router.exec import PluginStartError
    from router.pipeline import PlanError

    expected = (PluginInfoError, PluginStartError, AdminSocketError, PlanError, OSError)
    if isinstance(exc, BaseExceptionGroup):
        texts = [_startup_error(e) for e in exc.exceptions]
        if any(t is None for t in texts):
            return None
        return "; ".join(t for t in texts if t)
    return str(exc) if isinstance(exc, expected) else None


async def _watch_signals(stop: trio.Event) -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for signum in signals:
            log.info("got %s: finishing messages in flight", signal.Signals(signum).name)
            stop.set()
            return


async def _stream(r: Router, fmt: str, stop: trio.Event, bus: EventBus) -> None:
    """Route stdin to stdout; on ``stop`` read no more, but finish what was read."""
    items_send, items_recv = trio.open_memory_channel[Any](0)
    results_send, results_recv = trio.open_memory_channel[dict[str, Any]](256)
    reading = trio.CancelScope()

    async def read() -> None:
        async with items_send:
            with reading:
                async for item in _read_stdin(fmt):
                    if isinstance(item, BadInput):
                        log.warning("%s", item.reason)
                        await items_send.send(Result.failed_input(item.id, item.reason))
                    else:
                        await items_send.send(item)

    async def stop_reading() -> None:
        await stop.wait()
        reading.cancel()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(_write_results, results_recv, fmt)
        nursery.start_soon(read)
        nursery.start_soon(stop_reading)
        async with (
            results_send,
            items_recv,
            contextlib.aclosing(r.route_stream(items_recv)) as results,
        ):
            async for result in results:
                bus.publish(result_event(result))
                await results_send.send(result.to_wire())
        # The writer finishes when results_send closes; only the watcher is left.
        reading.cancel()
        stop.set()


LEVELS = click.Choice(["debug", "info", "warning", "error"], case_sensitive=False)


@click.command(cls=_OrderedPlugins, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--plugin",
    "builtins",
    type=(str, str),
    multiple=True,
    metavar="NAME OPT",
    help="Add a builtin (in-process) plugin NAME with option string OPT.",
)
@click.option(
    "--plugin-exec",
    "execs",
    multiple=True,
    metavar="CMD",
    help="Add a subprocess plugin: CMD is split as a shell would; it speaks on FD 3/4.",
)
@click.option(
    "--max-in-flight",
    type=click.IntRange(min=1),
    default=64,
    show_default=True,
    help="Messages routed at once.",
)
@click.option(
    "--hop-limit",
    type=click.IntRange(min=1),
    default=16,
    show_default=True,
    help="Derivations allowed before a chain fails as a routing loop.",
)
@click.option("--log-level", type=LEVELS, default="info", show_default=True)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["jsonl", "msgpack"]),
    default="jsonl",
    show_default=True,
    help="Stream format of stdin and stdout.",
)
@click.option(
    "--admin-socket",
    type=click.Path(dir_okay=False),
    default=None,
    help="Serve the admin interface (routerctl) on this unix socket.",
)
@click.option("--serve", is_flag=True, help="Run as a daemon: do not read stdin.")
@click.option("--print-plan", is_flag=True, help="Print the pipeline order and exit.")
@click.version_option(package_name="chanrouter", prog_name="routerd")
@click.pass_context
def main(
    ctx: click.Context,
    builtins: tuple[tuple[str, str], ...],
    execs: tuple[str, ...],
    max_in_flight: int,
    hop_limit: int,
    log_level: str,
    fmt: str,
    admin_socket: str | None,
    serve: bool,
    print_plan: bool,
) -> None:
    """Route messages through a pipeline of plugins.

    Plugins run in the order given (a plugin's priority can override it). With no
    --serve, messages are read from stdin (JSON lines, or msgpack with --format
    msgpack) and one result per input is written to stdout, in input order.

    Example (the seed's): routerd --plugin host-mount "/data /var/data" < msgs.jsonl
    """
    _configure_logging(log_level)
    plugins = ordered_plugins(ctx.meta.get("chanrouter.plugin_order", []), builtins, execs)
    if admin_socket is None and serve:
        from router.admin import default_socket_path

        admin_socket = default_socket_path()
    daemon = serve or (admin_socket is not None and not _stdin_is_stream())
    code = trio.run(
        lambda: _run(
            plugins,
            fmt=fmt,
            max_in_flight=max_in_flight,
            hop_limit=hop_limit,
            serve=daemon,
            admin_socket=admin_socket,
            print_plan=print_plan,
        )
    )
    ctx.exit(code)


if __name__ == "__main__":
    main()
