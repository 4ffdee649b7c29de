"""The public surface of plugin_sdk.session: what it exports and that it stays documented."""

from __future__ import annotations

import inspect
import subprocess
import sys

import plugin_sdk.session as session_api


def test_every_exported_name_exists_and_is_documented() -> None:
    for name in session_api.__all__:
        obj = getattr(session_api, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert inspect.getdoc(obj), f"{name} has no docstring"
    assert len(set(session_api.__all__)) == len(session_api.__all__)


def test_public_methods_of_the_channel_ends_and_session_are_documented() -> None:
    for cls in (
        session_api.Session,
        session_api.Sender,
        session_api.Receiver,
        session_api.ByteStreamWriter,
        session_api.ByteStreamReader,
    ):
        for name, member in vars(cls).items():
            if not name.startswith("_") and callable(member):
                assert inspect.getdoc(member), f"{cls.__name__}.{name} has no docstring"


def test_importing_the_session_pulls_in_neither_router_nor_click() -> None:
    code = (
        "import sys, plugin_sdk.session; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('router', 'click')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
