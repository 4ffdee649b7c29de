"""router: the chanrouter daemon and its routing engine. Builds on plugin_sdk."""

from .engine import PluginStats as PluginStats
from .engine import Router as Router
from .handle import InProcessHandle as InProcessHandle
from .handle import PluginHandle as PluginHandle
from .open import open as open
from .pipeline import Plan as Plan
from .pipeline import PlanError as PlanError
from .result import Hop as Hop
from .result import HopVerdict as HopVerdict
from .result import Result as Result
from .result import Status as Status

__all__ = [
    "Hop",
    "HopVerdict",
    "InProcessHandle",
    "Plan",
    "PlanError",
    "PluginHandle",
    "PluginStats",
    "Result",
    "Router",
    "Status",
    "open",
]
