"""Every test here runs an experiment script end to end (`script` marker): `make test-all` runs them, `make test`
(and CI) leaves the three slowest out (the default-model, transfer and benchmark scripts: about 170 s)."""

from __future__ import annotations

import pytest

SLOW_SCRIPTS = ("test_train_default_models.py", "test_transfer_experiment.py", "test_benchmark.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.name in SLOW_SCRIPTS:
            item.add_marker(pytest.mark.script)
