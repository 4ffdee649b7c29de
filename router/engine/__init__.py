"""The trio engine: many inputs in flight over plugin handles, results in input order."""

from ._gate import FifoGate as FifoGate
from ._router import Router as Router
from ._stats import PluginStats as PluginStats

__all__ = ["FifoGate", "PluginStats", "Router"]
