"""No class-scoped fixture is an instance method.

A class-scoped fixture runs once per class while each test gets a new instance, so ``self`` in it is
one test's instance only; pytest 9.1 deprecates the form (PytestRemovedIn10Warning) and pytest 10
removes it. The installed pytest may predate the warning, so the rule is read from the source here.
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def _is_broad_fixture(decorator: ast.expr) -> bool:
    """``@pytest.fixture(scope=...)`` with a scope wider than a function's (class, module, ...)."""
    if not isinstance(decorator, ast.Call) or ast.unparse(decorator.func) not in ("pytest.fixture", "fixture"):
        return False
    scope = next((kw.value for kw in decorator.keywords if kw.arg == "scope"), None)
    return isinstance(scope, ast.Constant) and scope.value != "function"


def instance_method_fixtures(source: str, filename: str) -> list[str]:
    """``file:line name`` of every broad-scoped fixture defined as an instance method in ``source``."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if not isinstance(node, ast.ClassDef):
            continue
        for method in node.body:
            if not isinstance(method, ast.FunctionDef):
                continue
            names = [ast.unparse(d) for d in method.decorator_list]
            if any(_is_broad_fixture(d) for d in method.decorator_list) and "classmethod" not in names:
                found.append(f"{filename}:{method.lineno} {node.name}.{method.name}")
    return found


def test_the_check_finds_an_instance_method_fixture() -> None:
    bad = 'class T:\n    @pytest.fixture(scope="class")\n    def made(self):\n        return 1\n'
    good = 'class T:\n    @pytest.fixture(scope="class")\n    @classmethod\n    def made(cls):\n        return 1\n'
    assert instance_method_fixtures(bad, "t.py") == ["t.py:3 T.made"]
    assert instance_method_fixtures(good, "t.py") == []


def test_no_broad_scoped_fixture_is_an_instance_method() -> None:
    found = []
    for path in sorted(TESTS.rglob("*.py")):
        found += instance_method_fixtures(path.read_text(encoding="utf-8"), str(path.relative_to(TESTS)))
    assert not found, f"make these @classmethod: {found}"
