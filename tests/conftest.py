from __future__ import annotations

import pytest

from mbc_interp import Run, train

from .helpers import build_cfg


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Run:
    """A finished tiny run (about two seconds), shared read-only by the tests."""
    return train(build_cfg(), tmp_path_factory.mktemp("runs") / "tiny", progress=False)
