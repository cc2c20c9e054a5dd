"""Lazy re-exports for the packages' ``__init__`` modules: a public name is imported from its
module the first time it is looked up, so ``import mbc_interp`` (and every command's argument
parser) costs milliseconds, and torch and TransformerLens load only once a model, a task or an
analysis is used.

The package's module object gets a ``__getattr__`` (through its class, see
:class:`LazyPackage`) rather than a plain module-level one because some exported names are
also submodule names (``mbc_interp.analysis.logit_lens`` the function,
``analysis/logit_lens.py`` the module): importing the submodule would otherwise rebind the
package attribute to the module, and the export would silently change meaning depending on what
happened to be imported first.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from collections.abc import Mapping, Sequence
from typing import Any


class LazyPackage(types.ModuleType):
    """A package module whose exported names resolve on first access and stay exports."""

    _lazy_exports: dict[str, str]
    """Exported name -> absolute name of the module defining it."""

    def __getattr__(self, name: str) -> Any:  # only called when ordinary lookup fails
        module = self.__dict__.get("_lazy_exports", {}).get(name)
        if module is None:
            raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        types.ModuleType.__setattr__(self, name, value)  # later lookups are plain
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        if (
            isinstance(value, types.ModuleType)
            and value.__name__ == f"{self.__name__}.{name}"
            and name in self.__dict__.get("_lazy_exports", {})
        ):
            return  # the import system binding a submodule an export shadows: the export wins
        types.ModuleType.__setattr__(self, name, value)

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(self._lazy_exports))


def lazy_package(package: str, exports: Mapping[str, Sequence[str]]) -> list[str]:
    """Make ``package`` (an imported package's ``__name__``) export ``exports`` lazily, given as
    ``{module: names}`` with modules relative to the package (``".run"``) or absolute. Returns
    the sorted export names, for the package's ``__all__``."""
    where = {
        name: importlib.util.resolve_name(module, package)
        for module, names in exports.items()
        for name in names
    }
    mod = sys.modules[package]
    types.ModuleType.__setattr__(mod, "_lazy_exports", where)
    mod.__class__ = LazyPackage
    return sorted(where)
