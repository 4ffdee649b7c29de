"""Entry points: ``python -m plugin_sdk module:Class 'OPTION'`` and ``run(PluginClass)``.

Both serve one plugin over FD 3 (read) and FD 4 (write), as the router sets them up,
and refuse to run when started by hand (``CHANROUTER_PLUGIN`` unset): a plugin speaking
binary frames to a terminal helps nobody.

A plugin class that never waits (:func:`serves_without_trio`) is served by the
blocking loop of :mod:`._blocking`, and trio is never imported: importing it is most
of a Python plugin's start-up. Any other plugin runs on trio (:func:`serve`).
``CHANROUTER_RUNNER=trio`` forces trio for every plugin (to compare, or to rule the
blocking loop out).
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import Final

from .._env import PLUGIN_ENV
from ._blocking import serve_blocking, serves_without_trio
from ._exits import EXIT_FAILED, ServablePlugin

__all__ = ["EXIT_USAGE", "load_target", "main", "run"]

EXIT_USAGE: Final = 2
"""Started wrongly: by hand, without FD 3/4, or with bad arguments."""

_RUNNER_ENV: Final = "CHANROUTER_RUNNER"
_USAGE: Final = "usage: python -m plugin_sdk package.module:ClassName ['OPTION']"
_NOT_BY_HAND: Final = (
    "this is a chanrouter plugin; start it with routerd --plugin-exec '{cmd}' "
    "(it speaks the plugin protocol on FD 3/4, not on the terminal)"
)


def load_target(target: str) -> Callable[[str], ServablePlugin]:
    """Import ``package.module:ClassName`` and return the class, or raise ``ValueError``."""
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"expected package.module:ClassName, got {target!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot import {module_name!r}: {exc}") from None
    obj = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ValueError(f"{module_name!r} has no attribute {attr!r}") from None
    if not callable(obj):
        raise ValueError(f"{target!r} is not a plugin class")
    return obj  # the plugin API validates it on construction


def _configure_logging() -> None:
    # The router reads stderr line by line and takes the level from the first word.
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )


def _fds_ready(cmd: str) -> bool:
    if os.environ.get(PLUGIN_ENV) != "1":
        print(_NOT_BY_HAND.format(cmd=cmd), file=sys.stderr)
        return False
    for fd in (3, 4):
        try:
            os.fstat(fd)
        except OSError:
            print(f"FD {fd} is not open: {_NOT_BY_HAND.format(cmd=cmd)}", file=sys.stderr)
            return False
    return True


def _serve_fds(make_plugin: Callable[[], ServablePlugin], plugin_class: object = None) -> int:
    if os.environ.get(_RUNNER_ENV) != "trio" and (
        plugin_class is None or serves_without_trio(plugin_class)
    ):
        # No class (the target failed to load: only a "fail" handshake to send) or a
        # plugin that never waits: no event loop needed.
        return serve_blocking(make_plugin, 3, 4)
    import trio  # only here: a plugin served without it never pays for importing it

    from ._serve import serve

    async def serve_fds() -> int:
        receive = trio.lowlevel.FdStream(3)
        send = trio.lowlevel.FdStream(4)
        return await serve(make_plugin, receive, send)

    return trio.run(serve_fds)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m plugin_sdk`` : serve ``module:Class`` with an option; return the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not 1 <= len(args) <= 2 or args[0] in ("-h", "--help"):
        print(_USAGE, file=sys.stderr)
        return EXIT_USAGE
    target, option = args[0], args[1] if len(args) == 2 else ""
    if not _fds_ready(f"python -m plugin_sdk {target} ..."):
        return EXIT_USAGE
    _configure_logging()
    try:
        plugin_class = load_target(target)
    except ValueError as exc:
        # Still handshake: the router then reports the problem naming the command.
        reason = str(exc)

        def fail() -> ServablePlugin:
            raise ValueError(reason)

        _serve_fds(fail)
        return EXIT_FAILED
    return _serve_fds(lambda: plugin_class(option), plugin_class)


def run(plugin_class: Callable[[str], ServablePlugin]) -> None:
    """Serve ``plugin_class(sys.argv[1])`` over FD 3/4, then exit (for a plugin script).

    ``if __name__ == "__main__": run(MyPlugin)`` makes a file a subprocess plugin; the
    same class runs in process unchanged.
    """
    if not _fds_ready(os.path.basename(sys.argv[0]) + " ..."):
        sys.exit(EXIT_USAGE)
    _configure_logging()
    option = sys.argv[1] if len(sys.argv) > 1 else ""
    sys.exit(_serve_fds(lambda: plugin_class(option), plugin_class))
