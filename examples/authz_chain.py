"""An authz chain of two subprocess plugins, Docker-style: every plugin must allow.

``ImagePolicy`` denies images from registries not on its allow-list;
``NoPrivileged`` denies privileged containers. A denial drops the message with the
reason; the next plugin never sees it. Run both out of process::

    routerd --plugin-exec "python -m plugin_sdk examples.authz_chain:ImagePolicy library" \\
            --plugin-exec "python -m plugin_sdk examples.authz_chain:NoPrivileged"
"""

from __future__ import annotations

from plugin_sdk import Message, OnError, OptionError, Plugin, drop, handles, split_option
from plugin_sdk.reply import Reply, passthrough


def _image_prefix(image: str) -> str:
    """The registry/namespace part of an image reference (``library`` when absent)."""
    return image.split("/", 1)[0] if "/" in image else "library"


class ImagePolicy(Plugin):
    """Allow only images whose first path part is in the option's list."""

    name = "authz-images"
    priority = 100  # authz runs before the plugins that rewrite the request
    on_error = OnError.FAIL  # fail-closed: a broken policy must not let requests through
    allowed: frozenset[str]

    def configure(self, option: str) -> None:
        words = split_option(option)
        if not words:
            raise OptionError("expected the allowed registries or namespaces, e.g. 'library'")
        self.allowed = frozenset(words)

    @handles("container.create")
    def check(self, msg: Message) -> Reply:
        image = msg.body.get("Image") if isinstance(msg.body, dict) else None
        if not isinstance(image, str):
            return drop("authz-images: request has no Image")
        prefix = _image_prefix(image)
        if prefix not in self.allowed:
            return drop(f"authz-images: image {image!r} is not from an allowed source")
        return passthrough()


class NoPrivileged(Plugin):
    """Deny ``HostConfig.Privileged: true``."""

    name = "authz-privileged"
    priority = 100
    on_error = OnError.FAIL

    @handles("container.create")
    def check(self, msg: Message) -> Reply:
        body = msg.body if isinstance(msg.body, dict) else {}
        if (body.get("HostConfig") or {}).get("Privileged") is True:
            return drop("authz-privileged: privileged containers are not allowed")
        return passthrough()
