"""Test handler module that fails at import, like a handler whose dependency is missing."""

import lt_module_that_does_not_exist  # noqa: F401


def handler(event, context):
    return {}
