"""The pure routing core: plans and the per-input routing state machine.

No trio, no I/O, no clock: the engine (router.engine) drives it and feeds in call
outcomes and their measured durations. The rules are in docs/ROUTING.md.
"""

from ._lineage import Lineage as Lineage
from ._lineage import describe_loop as describe_loop
from ._plan import Plan as Plan
from ._plan import PlanError as PlanError
from ._plan import accepts_type as accepts_type
from ._routing import DEFAULT_HOP_LIMIT as DEFAULT_HOP_LIMIT
from ._routing import DEFAULT_MAX_MESSAGES as DEFAULT_MAX_MESSAGES
from ._routing import Call as Call
from ._routing import Routing as Routing
from ._straight import Straight as Straight

__all__ = [
    "DEFAULT_HOP_LIMIT",
    "DEFAULT_MAX_MESSAGES",
    "Call",
    "Lineage",
    "Plan",
    "PlanError",
    "Routing",
    "Straight",
    "accepts_type",
    "describe_loop",
]
