"""Fixtures shared by the task families' tests."""

import pytest


@pytest.fixture(scope="module")
def garment_cache(tmp_path_factory):
    """Dressing garment meshes go to a temporary cache, not the user's."""
    from distill_ros.tasks.dressing.garments import CACHE_ENV

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(CACHE_ENV, str(tmp_path_factory.mktemp("garments")))
        yield
