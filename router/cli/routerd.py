"""``routerd``: the chanrouter daemon.

Stream mode (the default) reads messages on stdin and writes one result per input on
stdout, in input order, then drains and exits 0 at end of input. Daemon mode
(``--serve``, or an admin socket with no stream on stdin) routes only what arrives
over the admin socket, until SIGTERM or SIGINT.
"""

from __future__ import annotations

import functools
import logging
import os
import signal
import sys
from collections.abc import Sequence

import click
import trio

from router.events import EventBus

from ._plugin_args import OrderedPluginsCommand, PluginArg, build_handles, ordered_plugins
from ._stream import OutputClosed, stdin_is_stream, stream
from .errors import CliError

__all__ = ["PluginArg", "main"]

log = logging.getLogger("chanrouter.routerd")


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper()),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


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
                # Started, not start_soon: a SIGTERM that arrives once the admin socket
                # exists must find our handler installed, not Python's default.
                await nursery.start(_watch_signals, stop)
                if admin_socket is not None:
                    from router.admin import serve_admin

                    await nursery.start(
                        functools.partial(serve_admin, r, admin_socket, stop, events=bus)
                    )
                if serve:
                    log.info("serving until SIGTERM or SIGINT")
                    await stop.wait()
                else:
                    await stream(r, fmt, stop, bus)
                nursery.cancel_scope.cancel()
    except Exception as exc:
        if _only_output_closed(exc):
            return _output_closed()
        start_error = _startup_error(exc)
        if start_error is None:
            raise
        raise CliError(start_error) from None
    return 0


SIGPIPE_EXIT = 128 + signal.SIGPIPE
"""Exit status when stdout's reader went away: what a shell reports for ``cat`` there."""


def _only_output_closed(exc: BaseException) -> bool:
    if isinstance(exc, BaseExceptionGroup):
        return all(_only_output_closed(e) for e in exc.exceptions)
    return isinstance(exc, OutputClosed)


def _output_closed() -> int:
    """Stop quietly, as filters do when the reader of their output goes away.

    Plugins have been stopped by then. Whatever Python still holds for stdout goes to
    /dev/null, so flushing it at exit cannot fail a second time.
    """
    log.info("stdout was closed by its reader: stopped routing")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return SIGPIPE_EXIT


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


async def _watch_signals(
    stop: trio.Event, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        task_status.started()
        async for signum in signals:
            log.info("got %s: finishing messages in flight", signal.Signals(signum).name)
            stop.set()
            return


LEVELS = click.Choice(["debug", "info", "warning", "error"], case_sensitive=False)


@click.command(cls=OrderedPluginsCommand, context_settings={"help_option_names": ["-h", "--help"]})
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
    daemon = serve or (admin_socket is not None and not stdin_is_stream())
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
