"""Session-wide test set-up: a fresh cache directory, so no test reads what an earlier run (or
another checkout's code) trained or extracted."""

from __future__ import annotations

import pytest

from gans.feature_extractor_classifier import CACHE_DIR_ENV


@pytest.fixture(scope="session", autouse=True)
def gans_cache_dir(tmp_path_factory):
    """``$GANS_CACHE_DIR`` for the whole session (the classifier extractor, torch-fidelity's
    features and statistics, real-data floors), and ``$TORCH_HOME`` beneath it, where
    torch-fidelity caches whatever it is not given a directory for. Worker processes that tests
    start inherit both."""
    path = tmp_path_factory.mktemp("gans-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(CACHE_DIR_ENV, str(path))
        patch.setenv("TORCH_HOME", str(path / "torch"))
        yield path
