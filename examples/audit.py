"""audit: emits a derived ``audit.event`` for every container lifecycle message it sees.

The original message goes on unchanged; the audit event is routed through its own
pipeline (``audit.*`` plugins, if any) and ends up among the input's results, with
lineage pointing back at the message that caused it.
"""

from __future__ import annotations

from plugin_sdk import Message, Plugin, emit, handles, run
from plugin_sdk.reply import Reply


class Audit(Plugin):
    """Record who asked for what: one ``audit.event`` per container message."""

    name = "audit"
    version = "1.0"
    priority = -100  # after every default-priority plugin: audit what will happen

    @handles("container.*")
    def record(self, msg: Message) -> Reply:
        body = msg.body if isinstance(msg.body, dict) else {}
        event = msg.derive(
            "audit.event",
            {
                "action": msg.type,
                "message_id": msg.id,
                "image": body.get("Image"),
                "binds": (body.get("HostConfig") or {}).get("Binds", []),
            },
        )
        return emit(event)


if __name__ == "__main__":
    run(Audit)
