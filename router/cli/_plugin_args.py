"""routerd's plugin arguments: ``--plugin NAME OPT`` and ``--plugin-exec CMD``, in order.

click groups each option's values separately; the pipeline order is the order the
operator wrote them in, across both options, so the command notes it from the raw
arguments and :func:`ordered_plugins` interleaves the values back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import click

from router.events import EventBus

__all__ = ["OrderedPluginsCommand", "PluginArg", "build_handles", "ordered_plugins"]


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


class OrderedPluginsCommand(click.Command):
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
