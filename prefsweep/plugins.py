"""Discovery of a registry's modules: every module of a package, imported once.

A registry (judges, data sources, measures) is extended by adding one module to its package;
the package calls :func:`import_all` so that each module registers itself when the package is
imported, with no list of names to edit.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable


def import_all(package: str, path: Iterable[str], skip: Iterable[str] = ()) -> list[str]:
    """Import every module and subpackage of ``package`` (its ``__path__``) but ``skip``, in name
    order; return the names imported. Modules already imported are not imported again."""
    skipped = set(skip)
    names = sorted(m.name for m in pkgutil.iter_modules(list(path)) if m.name not in skipped
                   and not m.name.startswith("_"))
    for name in names:
        importlib.import_module(f"{package}.{name}")
    return names
