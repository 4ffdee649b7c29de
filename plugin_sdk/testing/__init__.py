"""Public helpers for testing plugins without the router.

In process: :class:`PluginHarness` (async) and :func:`run_plugin` (sync) drive a
plugin instance through start, messages and stop, checking the plugin contract.
"""

from ._inprocess import NotAcceptedError as NotAcceptedError
from ._inprocess import PluginContractError as PluginContractError
from ._inprocess import PluginHarness as PluginHarness
from ._inprocess import run_plugin as run_plugin
