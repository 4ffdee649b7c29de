"""``routerctl``: the admin client for a running routerd.

Every command connects to the admin socket (``--socket``, default as routerd's),
sends one request and prints the answer: a table or text by default, the reply
itself with ``--json``. Exit codes: 0 ok; 1 routerd said no (an error reply);
2 usage error; 3 cannot reach routerd (no socket, nobody answering, connection
refused or lost).
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click
import trio

from ..admin.client import (
    AdminClient,
    AdminConnectError,
    AdminConnectionLost,
    AdminError,
    connect_admin,
)
from ..admin.render import render_event, render_plugins, render_result, render_stats
from ..admin.socket_path import default_socket_path

__all__ = ["EXIT_NO", "EXIT_UNREACHABLE", "DaemonSaidNo", "Unreachable", "main"]

EXIT_NO = 1
"""routerd answered the request with an error."""
EXIT_UNREACHABLE = 3
"""routerd could not be reached, refused the connection, or went away."""

F = TypeVar("F", bound=Callable[..., Any])


class DaemonSaidNo(click.ClickException):
    """routerd refused the request; shown as ``Error: routerd: <reason>``, exit 1."""

    exit_code = EXIT_NO


class Unreachable(click.ClickException):
    """routerd could not be reached or dropped the connection; exit 3."""

    exit_code = EXIT_UNREACHABLE


def _to_json(value: object) -> str:
    def fallback(obj: object) -> object:
        if isinstance(obj, bytes):
            return obj.hex()
        return repr(obj)

    return json.dumps(value, default=fallback, sort_keys=True)


def _json_option(func: F) -> F:
    """``--json`` on a subcommand (it is also accepted before the command)."""
    return click.option(
        "--json", "as_json", is_flag=True, default=None, help="Print the reply as JSON."
    )(func)


def _wants_json(ctx: click.Context, as_json: bool | None) -> bool:
    return bool(as_json) or bool(ctx.obj.get("json"))


def _run(ctx: click.Context, work: Callable[[AdminClient], Awaitable[None]]) -> None:
    """Connect, run ``work``, and turn client errors into exit codes."""
    path: str = ctx.obj["socket"]

    async def session() -> None:
        async with connect_admin(path) as admin:
            await work(admin)

    try:
        trio.run(session)
    except AdminError as exc:
        raise DaemonSaidNo(f"routerd: {exc}") from None
    except (AdminConnectError, AdminConnectionLost) as exc:
        raise Unreachable(str(exc)) from None


def _simple(ctx: click.Context, as_json: bool | None, op: str, text: Callable[..., str]) -> None:
    """One request; print ``text(reply)`` or the JSON reply."""

    async def work(admin: AdminClient) -> None:
        reply = await admin.request(op, **ctx.obj.get("args", {}))
        click.echo(_to_json(reply) if _wants_json(ctx, as_json) else text(reply))

    _run(ctx, work)


def _one_row(reply: dict[str, Any]) -> str:
    return render_plugins({"plugins": [reply.get("plugin")]})


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="chanrouter", prog_name="routerctl")
@click.option(
    "--socket",
    "socket_path",
    metavar="PATH",
    default=None,
    help="routerd's admin socket [default: $XDG_RUNTIME_DIR/chanrouter.sock, "
    "or /run/chanrouter.sock for root].",
)
@click.option("--json", "as_json", is_flag=True, help="Print replies as JSON.")
@click.pass_context
def main(ctx: click.Context, socket_path: str | None, as_json: bool) -> None:
    """Inspect and change a running routerd's pipeline."""
    ctx.ensure_object(dict)
    ctx.obj["socket"] = socket_path or default_socket_path()
    ctx.obj["json"] = as_json


@main.command()
@_json_option
@click.pass_context
def plugins(ctx: click.Context, as_json: bool | None) -> None:
    """List plugins in pipeline order, with state, counters and latency."""
    _simple(ctx, as_json, "plugins", render_plugins)


@main.command()
@click.option(
    "--plugin",
    "builtin",
    nargs=2,
    metavar="NAME OPT",
    default=None,
    help="A builtin plugin by name and its option string.",
)
@click.option("--exec", "cmd", metavar="CMD", default=None, help="A subprocess plugin command.")
@click.option("--name", default=None, help="Name this instance (two of one builtin can coexist).")
@click.option("--position", type=click.IntRange(min=0), default=None, help="Registration index.")
@click.option("--priority", type=int, default=None, help="Override the plugin's priority.")
@_json_option
@click.pass_context
def add(
    ctx: click.Context,
    builtin: tuple[str, str] | None,
    cmd: str | None,
    name: str | None,
    position: int | None,
    priority: int | None,
    as_json: bool | None,
) -> None:
    """Add a plugin to the live pipeline (--plugin NAME OPT or --exec CMD)."""
    if (builtin is None) == (cmd is None):
        raise click.UsageError("give exactly one of --plugin NAME OPT or --exec CMD")
    args: dict[str, Any] = {}
    if builtin is not None:
        args["plugin"], args["option"] = builtin
    else:
        args["exec"] = cmd
    for key, value in (("name", name), ("position", position), ("priority", priority)):
        if value is not None:
            args[key] = value
    ctx.obj["args"] = args
    _simple(ctx, as_json, "add", lambda r: "added\n" + _one_row(r))


@main.command()
@click.argument("name")
@_json_option
@click.pass_context
def remove(ctx: click.Context, name: str, as_json: bool | None) -> None:
    """Remove a plugin (its calls in flight finish first)."""
    ctx.obj["args"] = {"name": name}
    _simple(ctx, as_json, "remove", lambda r: f"removed {r.get('removed', name)}")


@main.command()
@click.argument("name")
@_json_option
@click.pass_context
def restart(ctx: click.Context, name: str, as_json: bool | None) -> None:
    """Restart a plugin (a quarantined one included)."""
    ctx.obj["args"] = {"name": name}
    _simple(ctx, as_json, "restart", lambda r: "restarted\n" + _one_row(r))


def _order_text(reply: dict[str, Any]) -> str:
    return "pipeline order: " + " -> ".join(reply.get("order") or [])


@main.command()
@click.argument("name")
@click.option("--position", type=click.IntRange(min=0), required=True, help="New index (0 first).")
@_json_option
@click.pass_context
def move(ctx: click.Context, name: str, position: int, as_json: bool | None) -> None:
    """Move a plugin to another place in the pipeline order."""
    ctx.obj["args"] = {"name": name, "position": position}
    _simple(ctx, as_json, "move", _order_text)


@main.command()
@click.argument("names", nargs=-1, required=True)
@_json_option
@click.pass_context
def reorder(ctx: click.Context, names: tuple[str, ...], as_json: bool | None) -> None:
    """Put the named plugins first, in this order; the rest keep theirs after them."""
    ctx.obj["args"] = {"names": list(names)}
    _simple(ctx, as_json, "reorder", _order_text)


@main.command()
@click.argument("message_type", metavar="TYPE")
@click.argument("body", metavar="[BODY_JSON]", required=False)
@click.option("--id", "message_id", default=None, help="The message id [default: a fresh one].")
@_json_option
@click.pass_context
def send(
    ctx: click.Context,
    message_type: str,
    body: str | None,
    message_id: str | None,
    as_json: bool | None,
) -> None:
    """Route one message through the live pipeline and show its result and trace."""
    try:
        parsed = None if body is None else json.loads(body)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="BODY_JSON") from None
    message: dict[str, Any] = {"type": message_type, "body": parsed}
    if message_id is not None:
        message["id"] = message_id
    ctx.obj["args"] = {"message": message}
    _simple(ctx, as_json, "send", lambda r: render_result(r["result"]))


@main.command()
@click.option("--no-results", is_flag=True, help="Only plugin and pipeline events.")
@click.option(
    "--count", type=click.IntRange(min=1), default=None, help="Stop after this many events."
)
@_json_option
@click.pass_context
def watch(ctx: click.Context, no_results: bool, count: int | None, as_json: bool | None) -> None:
    """Stream routed results and plugin events as they happen (Ctrl-C to stop)."""
    wants_json = _wants_json(ctx, as_json)

    async def work(admin: AdminClient) -> None:
        seen = 0
        async for event in admin.watch(results=not no_results):
            click.echo(_to_json(event) if wants_json else render_event(event))
            sys.stdout.flush()
            seen += 1
            if count is not None and seen >= count:
                return

    with contextlib.suppress(KeyboardInterrupt):
        _run(ctx, work)


@main.command()
@_json_option
@click.pass_context
def stats(ctx: click.Context, as_json: bool | None) -> None:
    """Show daemon-wide counters."""
    _simple(ctx, as_json, "stats", render_stats)


@main.command()
@_json_option
@click.pass_context
def shutdown(ctx: click.Context, as_json: bool | None) -> None:
    """Ask routerd to stop (it drains messages in flight and stops its plugins)."""
    _simple(ctx, as_json, "shutdown", lambda r: "routerd is shutting down")
