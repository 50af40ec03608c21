"""The command-line tests never write the user's dataset cache: a fit of a built-in data
set (``--mixture digits:10``, the ``realdata`` section) goes to one temporary folder per
test session (``DSMTHEORY_CACHE_DIR``), unless a test sets its own."""

import pytest

from dsmtheory import datasets


@pytest.fixture(autouse=True, scope="session")
def _dataset_cache(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv(datasets.CACHE_ENV, str(tmp_path_factory.mktemp("dataset-cache")))
    yield
    mp.undo()
