"""Entry points that rebuild what the project ships (e.g. the digits classifier's weights)."""
