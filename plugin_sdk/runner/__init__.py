"""The plugin runner: serves one plugin over FD 3/4 as a subprocess of the router.

``python -m plugin_sdk package.module:ClassName 'OPTION'`` or, in a script,
``plugin_sdk.runner.run(MyPlugin)``. :func:`serve` is the transport-agnostic core.
"""

from ._main import EXIT_USAGE as EXIT_USAGE
from ._main import load_target as load_target
from ._main import main as main
from ._main import run as run
from ._serve import EXIT_FAILED as EXIT_FAILED
from ._serve import EXIT_OK as EXIT_OK
from ._serve import ServablePlugin as ServablePlugin
from ._serve import serve as serve
