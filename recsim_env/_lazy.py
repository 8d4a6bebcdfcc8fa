"""Lazy package faces (PEP 562): a package lists the names it offers and where they live, and each
module is imported on the first use of one of its names — the pattern of ``lazy_loader.attach``
(scientific Python's SPEC 1), without the dependency."""

from __future__ import annotations

import importlib
from typing import Any, Callable


def attach(package: str, exports: dict[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """``__getattr__``, ``__dir__`` and ``__all__`` for ``package``, whose ``exports`` maps each name
    to the module that defines it (a submodule named ``name`` itself maps to ``""``)."""
    namespace = importlib.import_module(package).__dict__

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module = exports[name]
        value = importlib.import_module(f"{package}.{name}") if module == "" else getattr(
            importlib.import_module(module), name)
        namespace[name] = value  # later lookups skip this function
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(exports))

    return __getattr__, __dir__, sorted(exports)
