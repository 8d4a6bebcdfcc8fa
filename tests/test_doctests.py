"""The packages' ``Examples:`` doctests run with the tests, one test per module that has any.

(Not ``--doctest-modules``: collecting the tests' own ``conftest.py`` files as doctest modules makes
pytest import several modules named ``conftest``.)"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

PACKAGES = ("recsim_env", "agents", "baselines")


def _modules() -> list[str]:
    names = []
    for package in PACKAGES:
        names.append(package)
        root = importlib.import_module(package)
        names += [info.name for info in pkgutil.walk_packages(root.__path__, prefix=f"{package}.")]
    return names


def _with_examples(name: str) -> bool:
    module = importlib.import_module(name)  # only the module's own objects, as doctest.testmod reads them
    tests = doctest.DocTestFinder().find(module, module.__name__, module=module)
    return any(not example.options.get(doctest.SKIP) for test in tests for example in test.examples)


MODULES = [name for name in _modules() if _with_examples(name)]


def test_the_documented_entry_points_have_examples() -> None:
    for name in ("recsim_env.env.rec_env", "recsim_env.env.vector", "recsim_env.evaluation.rollout",
                 "recsim_env.fit.pipeline"):
        assert name in MODULES, name


@pytest.mark.parametrize("name", MODULES)
def test_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
