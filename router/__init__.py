"""router: the chanrouter daemon and its routing engine. Builds on plugin_sdk."""
