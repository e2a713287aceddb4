"""The infra tests share one synthesis of the app per session: it takes a while (jsii starts node, cdk-nag
walks every resource)."""

from __future__ import annotations

import pytest
from infra_synthesis import Synthesis, synthesize


@pytest.fixture(scope="session")
def synthesis(tmp_path_factory: pytest.TempPathFactory) -> Synthesis:
    return synthesize(tmp_path_factory.mktemp("cdk.out"))
