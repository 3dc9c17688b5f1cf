"""Loading loss strategies from outside the project.

Two ways, both ending in ``register_strategy``:
- an installed package declares ``[project.entry-points."gans.losses"] my-loss = "pkg.mod:MyLoss"``;
  the group is read once, the first time the strategy registry is used (pytest's ``pytest11``);
- ``load_plugin("pkg.mod")`` or ``load_plugin("path/to/file.py")`` imports a module whose body calls
  ``register_strategy``.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import inspect
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from gans.data import DATASETS
from gans.models import ARCHITECTURES
from gans.registry import RegistryError, providing
from gans.storage import sha256_of_file
from gans.strategies import STRATEGIES, make_strategy, register_strategy

ENTRY_POINT_GROUP = "gans.losses"
_LOADED: dict[str, list[str]] = {}  # module name or resolved file path -> names it registered


class PluginError(RegistryError):
    """A plugin could not be imported or registered; the message names the plugin and the cause."""


def register_entry_points(group: str, register: Callable[..., Any]) -> None:
    """Load every entry point of ``group`` and call ``register(name, obj, provider=...)`` with
    its name, the object it names and the package it comes from.

    Raises:
        PluginError: an entry point fails to import (the package and the cause named).
    """
    for ep in importlib.metadata.entry_points(group=group):
        package = ep.dist.name if ep.dist is not None else "an unknown package"
        provider = f"package {package} (entry point {ep.name} = {ep.value})"
        try:
            obj = ep.load()
        except Exception as exc:
            raise PluginError(f"{provider} failed to import: {type(exc).__name__}: {exc}") from exc
        register(ep.name, obj, provider=provider)


STRATEGIES.add_lazy_loader(lambda: register_entry_points(ENTRY_POINT_GROUP, register_strategy))


def load_plugin(module_or_file: str) -> list[str]:
    """Import a module by dotted name, or a ``.py`` file by path, that registers strategies.

    Returns:
        The names it registered. Loading the same module or file again does nothing and returns
        the same names.

    Raises:
        PluginError: the module or file is missing or fails to import.
    """
    path = Path(module_or_file)
    if path.is_dir():  # a directory would import as an empty namespace package, silently
        raise PluginError(
            f"plugin {module_or_file} is a directory: give a .py file or an importable module"
        )
    key = str(path.resolve()) if path.suffix == ".py" else module_or_file
    if key in _LOADED:  # worker processes load the main process's plugins again
        return _LOADED[key]
    before = set(STRATEGIES.names())
    try:
        if path.suffix == ".py":
            if not path.is_file():
                raise PluginError(f"plugin file {module_or_file} does not exist")
            module_name = f"gans_plugin_{path.stem}"
            spec = importlib.util.spec_from_file_location(module_name, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module
            with providing(f"plugin file {module_or_file}"):
                spec.loader.exec_module(module)
        else:
            with providing(f"plugin module {module_or_file}"):
                importlib.import_module(module_or_file)
    except RegistryError:
        raise
    except SystemExit as exc:  # sys.exit() in a module body would end the caller, even with 0
        raise PluginError(
            f"plugin {module_or_file} called sys.exit({exc.code!r}) while importing"
        ) from exc
    except Exception as exc:
        raise PluginError(
            f"plugin {module_or_file} failed to import: {type(exc).__name__}: {exc}"
        ) from exc
    _LOADED[key] = sorted(set(STRATEGIES.names()) - before)
    return _LOADED[key]


def plugin_sources(
    strategy: str, hyperparameters: Mapping[str, Any], arch: str, dataset: str
) -> dict[str, dict[str, str]]:
    """What a run's plugin code is: for each part of the run that comes from outside this package
    (the strategy and its hyperparameters, loss, penalty and constraint classes, the architecture,
    the dataset loader), who registered it, where its source is and a hash of that source.

    Args:
        strategy, hyperparameters: the run's strategy name and its overrides.
        arch, dataset: the run's architecture and dataset names (``"mnist:7"`` selects its base).

    Returns:
        ``{part: {"provider": ..., "object": ..., "file": ..., "sha256": ...}}``; empty when every
        part is the package's own. The hash is of the defining module's file, so a change anywhere
        in it (a helper the class calls included) counts, while a renamed or moved copy of the same
        file does not; code the module imports from elsewhere is not covered.
    """
    built = make_strategy(strategy, hyperparameters)
    from_strategy = STRATEGIES.provider(strategy)
    parts: dict[str, tuple[object, str]] = {
        "strategy": (type(built), from_strategy),
        "hyperparameters": (type(built.hparams), from_strategy),
        "loss": (type(built.loss), from_strategy),
        "penalty": (type(built.penalty) if built.penalty else None, from_strategy),
        "constraint": (type(built.constraint) if built.constraint else None, from_strategy),
        "architecture": (ARCHITECTURES.get(arch).build, ARCHITECTURES.provider(arch)),
    }
    base = dataset.partition(":")[0]
    parts["dataset"] = (DATASETS.get(base), DATASETS.provider(base))
    return {
        part: {"provider": provider, **_source(obj)}
        for part, (obj, provider) in parts.items()
        if obj is not None and not _ours(obj)
    }


def _ours(obj: object) -> bool:
    module = getattr(obj, "__module__", "") or ""
    return module == "gans" or module.startswith("gans.")


def _source(obj: object) -> dict[str, str]:
    name = f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"
    try:
        path = Path(inspect.getsourcefile(obj))
        digest = sha256_of_file(path)
    except (TypeError, OSError):  # defined interactively: no file to hash
        return {"object": name, "file": "unknown", "sha256": "unknown"}
    return {"object": name, "file": str(path), "sha256": digest}
