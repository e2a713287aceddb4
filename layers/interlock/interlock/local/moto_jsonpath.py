"""moto's Step Functions interpreter, parsing each JSONPath once: :func:`install`, undone by what it returns.

moto evaluates every ``InputPath``, ``ResultPath``, ``OutputPath`` and ``$``-suffixed parameter by calling
``jsonpath_ng``'s ``parse`` on the path's text, and ``parse`` builds a new PLY parser each time (its grammar
tables included): about a twentieth of a run's CPU in the local runtime. A parsed path is an immutable
expression (``find`` and ``update_or_create`` change the data they are given, never the expression), so the
same text is parsed once and its expression shared. The paths come from state machine definitions, so there
are few of them; the cache is bounded all the same.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

CACHE_SIZE = 4096  # distinct JSONPath texts


def install() -> Callable[[], None]:
    from moto.stepfunctions.parser.asl.component.common.path import result_path
    from moto.stepfunctions.parser.asl.utils import json_path

    patched: list[tuple[Any, Any]] = [(json_path, json_path.parse), (result_path, result_path.parse)]
    for module, parse in patched:
        module.parse = _cached(parse)

    def uninstall() -> None:
        for module, parse in patched:
            module.parse = parse

    return uninstall


def _cached(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    return functools.lru_cache(maxsize=CACHE_SIZE)(parse)
