"""The workflows: one package each (``<name>/__init__.py`` declares ``WORKFLOW``), found by
:mod:`interlock.kit.registry`. See docs/workflows.md."""
