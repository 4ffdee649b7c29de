"""The builtin plugins, loaded by name through the ``chanrouter.plugins`` entry points.

Each builtin uses only the plugin_sdk API, so the same class also runs as a
subprocess plugin. :mod:`router.builtins.registry` finds and loads them.
"""
