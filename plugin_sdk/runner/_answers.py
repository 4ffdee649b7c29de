"""What both runners do with a batch of answers the wire layer refuses to send.

Answers go out as few ``replies`` messages as possible: one per turn of the blocking
loop, one per scheduling round under trio. Rarely, one message cannot be sent: its
frame is over the router's ``max_frame`` (many large answers together), or one
answer cannot be encoded or nests too deep. Splitting such a batch in halves until
each part goes costs nothing in the common case (no size is computed up front), and
an answer that cannot go even alone becomes an ``error`` answer naming why, so the
router's call still ends.
"""

from __future__ import annotations

import logging
from typing import Any

from ..app import answer_entry
from ..reply import error

__all__ = ["Answer", "instead_of_unsendable"]

log = logging.getLogger("chanrouter.runner")

_CANNOT_SEND = "the plugin could not send its reply:"

Answer = list[Any]
"""One entry of a ``replies`` message, as :func:`plugin_sdk.app.answer_entry` builds it."""


def instead_of_unsendable(batch: list[Answer], exc: Exception) -> list[list[Answer]]:
    """The batches to try, in order, instead of ``batch``, which failed with ``exc``.

    Several answers: the two halves. One answer: an ``error`` answer for the same call
    saying why its reply could not be sent; none when that one is what failed (a short
    text and no messages: the channel itself is unusable, nothing is left to try).
    """
    if len(batch) > 1:
        middle = len(batch) // 2
        return [batch[:middle], batch[middle:]]
    [(call_id, _verdict, _messages, reason)] = batch
    if reason.startswith(_CANNOT_SEND):
        log.error("cannot send the answer to call %s: %s", call_id, exc)
        return []
    log.error("cannot send the reply to call %s, answering it with an error: %s", call_id, exc)
    return [[answer_entry(call_id, error(f"{_CANNOT_SEND} {exc}"))]]
