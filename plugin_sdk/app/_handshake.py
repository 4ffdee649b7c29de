"""The handshake: the first message a plugin sends, on the first channel it opens.

``{"op": "ready", "info": PluginInfo.to_wire(), "sdk": "...", "app": 2}`` says the plugin is
configured and what it handles (and, in an optional ``"features"`` list, which optional
requests it understands); ``{"op": "fail", "error": "..."}`` says it could not start (an
invalid option, say) and is about to exit 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from ..info import PluginInfo, PluginInfoError
from ._errors import AppProtocolError, shown

__all__ = [
    "APP_VERSION",
    "FEATURE_CANCEL",
    "SDK_ID",
    "SUPPORTED_APP_VERSIONS",
    "Fail",
    "Handshake",
    "Ready",
    "parse_handshake",
]

APP_VERSION: Final = 2
"""The application-layer version this SDK speaks (sent as ``"app"`` in ``ready``).

Version 2 batches calls and multiplexes answers by call id; version 1 (a reply channel
per call) was never released and is refused.
"""
SUPPORTED_APP_VERSIONS: Final = frozenset({2})
"""Application-layer versions a host built from this SDK accepts."""
SDK_ID: Final = "chanrouter-python/0.1"
"""What this SDK calls itself in ``ready`` (free text, for logs and the admin interface)."""
FEATURE_CANCEL: Final = "cancel"
"""The feature a plugin names in ``ready`` when it understands ``cancel`` requests.

A host sends ``cancel`` only to a plugin that named it: an older plugin would refuse
each one as an unsupported op, in its log.
"""


@dataclass(frozen=True, slots=True)
class Ready:
    """The plugin is configured and handles the types its info names."""

    info: PluginInfo
    sdk: str = SDK_ID
    app: int = APP_VERSION
    features: tuple[str, ...] = ()
    """Optional requests the plugin understands (:data:`FEATURE_CANCEL`); the host
    ignores names it does not know, so a plugin may name features of newer hosts."""

    def to_wire(self) -> dict[str, Any]:
        """The msgpack map sent on the wire (``features`` only when there are some)."""
        wire: dict[str, Any] = {
            "op": "ready",
            "info": self.info.to_wire(),
            "sdk": self.sdk,
            "app": self.app,
        }
        if self.features:
            wire["features"] = list(self.features)
        return wire


@dataclass(frozen=True, slots=True)
class Fail:
    """The plugin could not start; ``error`` says why (shown to the operator as is)."""

    error: str

    def to_wire(self) -> dict[str, Any]:
        """The msgpack map sent on the wire."""
        return {"op": "fail", "error": self.error}


Handshake = Ready | Fail


def parse_handshake(obj: object) -> Handshake:
    """Read a plugin's handshake message, or raise :class:`AppProtocolError` saying why not.

    A ``ready`` whose ``app`` version this side does not support is an error too: the
    router must not route through a plugin whose messages it may misread.
    """
    if not isinstance(obj, dict):
        raise AppProtocolError(f"handshake must be a map with an 'op', got {shown(obj)}")
    op = obj.get("op")
    if op == "fail":
        error = obj.get("error")
        if not isinstance(error, str):
            raise AppProtocolError(f"handshake 'fail' needs an 'error' string, got {shown(obj)}")
        return Fail(error)
    if op != "ready":
        raise AppProtocolError(f"handshake op must be 'ready' or 'fail', got {shown(obj)}")
    app = obj.get("app", 1)  # absent means 1, the version before the field existed
    if type(app) is not int or app not in SUPPORTED_APP_VERSIONS:
        supported = sorted(SUPPORTED_APP_VERSIONS)
        raise AppProtocolError(
            f"plugin speaks application protocol version {shown(app)}; "
            f"this router supports {supported}"
        )
    sdk = obj.get("sdk", "")
    if not isinstance(sdk, str):
        raise AppProtocolError(f"handshake 'sdk' must be a string, got {shown(sdk)}")
    features = obj.get("features", [])
    if not (isinstance(features, list) and all(isinstance(f, str) for f in features)):
        raise AppProtocolError(
            f"handshake 'features' must be a list of strings, got {shown(features)}"
        )
    try:
        info = PluginInfo.from_wire(obj.get("info"))
    except (PluginInfoError, ValueError, TypeError) as exc:
        raise AppProtocolError(f"invalid plugin info in handshake: {exc}") from None
    return Ready(info, sdk, app, tuple(features))
