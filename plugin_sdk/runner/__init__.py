"""The plugin runner: serves one plugin over FD 3/4 as a subprocess of the router.

``python -m plugin_sdk package.module:ClassName 'OPTION'`` or, in a script,
``plugin_sdk.runner.run(MyPlugin)``. :func:`serve` is the transport-agnostic core.
"""

from typing import TYPE_CHECKING, Any

from ._blocking import serve_blocking as serve_blocking
from ._blocking import serves_without_trio as serves_without_trio
from ._exits import EXIT_FAILED as EXIT_FAILED
from ._exits import EXIT_OK as EXIT_OK
from ._exits import ServablePlugin as ServablePlugin
from ._main import EXIT_USAGE as EXIT_USAGE
from ._main import load_target as load_target
from ._main import main as main
from ._main import run as run

if TYPE_CHECKING:
    from ._serve import serve as serve


def __getattr__(name: str) -> Any:
    # serve() needs trio; importing it lazily keeps a plugin served without trio
    # (see serves_without_trio) from paying for the import.
    if name == "serve":
        from ._serve import serve

        return serve
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
