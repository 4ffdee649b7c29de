"""Example chanrouter plugins: each runs in process or as ``python -m plugin_sdk`` unchanged."""
