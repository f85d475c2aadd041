"""The contract suite (runbridge.testing.BackendContract) bound to every backend.

One class per backend configuration; the tests are the same for all of them.
"""

import pytest

from runbridge.testing import BackendContract


class TestSQLiteBackend(BackendContract):
    @pytest.fixture
    def backend_spec(self, tmp_path):
        return f"sqlite:{tmp_path / 'store' / 'runs.db'}"
