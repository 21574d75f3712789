"""The registry of providers, by name: serving backends and the providers every project may use.

Serving backends register under the name a project file gives as `backend.type`; other
providers (inference topics, say) register a factory that returns None when the project does
not use them. The built-in ones live in the packages named in `PLUGIN_PACKAGES`, imported on
first use so that the core never imports a provider and a command that needs none pays nothing.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from declserve.errors import DeclserveError
from declserve.loader import LoadedProject
from declserve.provider import Provider, ServingBackend

BackendFactory = Callable[[LoadedProject], ServingBackend]
ProviderFactory = Callable[[LoadedProject], "Provider | None"]

# Packages whose import registers providers; a third-party one can be added here or register
# itself by calling the functions below before a command runs.
PLUGIN_PACKAGES = ["declserve.backends", "declserve.topics"]

_backends: dict[str, BackendFactory] = {}
_providers: dict[str, ProviderFactory] = {}
_loaded = False


def register_backend(name: str, factory: BackendFactory) -> None:
    _backends[name] = factory


def register_provider(name: str, factory: ProviderFactory) -> None:
    _providers[name] = factory


def _load() -> None:
    global _loaded
    if not _loaded:
        for package in PLUGIN_PACKAGES:
            importlib.import_module(package)
        _loaded = True


def backend_names() -> list[str]:
    _load()
    return sorted(_backends)


def open_backend(project: LoadedProject) -> ServingBackend:
    """Connect to the serving backend the project file names."""
    _load()
    name = project.project.spec.backend.type
    factory = _backends.get(name)
    if factory is None:
        raise DeclserveError(
            f"the {name!r} backend is not available in this version "
            f"(available: {', '.join(sorted(_backends))})"
        )
    return factory(project)


def open_providers(project: LoadedProject) -> list[Provider]:
    """Every other provider the project uses, in registration order."""
    _load()
    found = (factory(project) for factory in _providers.values())
    return [p for p in found if p is not None]
