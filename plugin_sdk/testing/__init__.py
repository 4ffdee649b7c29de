"""Public helpers for testing plugins without the router.

In process: :class:`PluginHarness` (async) and :func:`run_plugin` (sync) drive a
plugin instance through start, messages and stop, checking the plugin contract.
Out of process: :func:`check_plugin` (async) and :func:`assert_conforms` (sync) spawn
any plugin executable, in any language, over real FD 3/4 and check that it follows
docs/PROTOCOL.md (handshake, replies, pings, unknown ops, shutdown).
"""

from ._conformance import ConformanceReport as ConformanceReport
from ._conformance import assert_conforms as assert_conforms
from ._conformance import check_plugin as check_plugin
from ._inprocess import NotAcceptedError as NotAcceptedError
from ._inprocess import PluginContractError as PluginContractError
from ._inprocess import PluginHarness as PluginHarness
from ._inprocess import run_plugin as run_plugin
