"""Name -> object registries for every pluggable kind (strategies, datasets, architectures).

One small class serves all kinds so that names are validated, duplicates refused and unknown names
reported the same way everywhere (the pattern of torch-fidelity's ``registry.py``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

T = TypeVar("T")

# kebab-case: lowercase letters and digits in dash-separated words, e.g. "wgan-gp", "mnist-5k",
# "25gaussians". No spaces, dots or path separators, so names are safe in file paths and CLI flags.
NAME_PATTERN = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


# Who registers now: "gans", or the plugin file or module being imported (innermost last).
_providers = ["gans"]


@contextmanager
def providing(provider: str):
    """Credit what is registered inside the block to ``provider`` (a plugin file or module)."""
    _providers.append(provider)
    try:
        yield
    finally:
        _providers.pop()


class RegistryError(ValueError):
    """A name was malformed, registered twice, or is unknown."""


class Registry(Generic[T]):
    """A plain dict of named entries with validation on the way in and clear errors on the way out.

    Args:
        kind: what the entries are, used in messages ("loss strategy", "dataset", ...).
        check: optional validation of a new entry; it raises ``RegistryError`` to refuse it.
    """

    def __init__(
        self, kind: str, check: Callable[[str, T], None] | None = None, unknown_hint: str = ""
    ):
        self.kind = kind
        self._check = check
        self._unknown_hint = unknown_hint  # how to add one, for the unknown-name error
        self._entries: dict[str, T] = {}
        self._providers: dict[str, str] = {}
        self._lazy_loaders: list[Callable[[], None]] = []

    def register(self, name: str, entry: T, provider: str | None = None) -> T:
        """Add ``entry`` under ``name``; ``provider`` says where it came from (for duplicates and
        listings): by default the plugin being loaded (``providing``), else ``gans``."""
        provider = provider or _providers[-1]
        if not isinstance(name, str) or not NAME_PATTERN.match(name):
            raise RegistryError(
                f"invalid {self.kind} name {name!r}: use kebab-case (lowercase letters, digits and "
                "single dashes, e.g. 'wgan-gp'), no spaces, dots or path separators"
            )
        if name in self._entries:
            raise RegistryError(
                f"{self.kind} {name!r} is already registered by {self._providers[name]}; "
                f"{provider} tries to register it again"
            )
        if self._check is not None:
            self._check(name, entry)
        self._entries[name] = entry
        self._providers[name] = provider
        return entry

    def add_lazy_loader(self, loader: Callable[[], None]) -> None:
        """Run ``loader`` once, the first time the registry is read (e.g. entry-point discovery)."""
        self._lazy_loaders.append(loader)

    def _load_lazy(self) -> None:
        while self._lazy_loaders:
            self._lazy_loaders.pop(0)()

    def get(self, name: str) -> T:
        self._load_lazy()
        try:
            return self._entries[name]
        except KeyError:
            hint = f"; {self._unknown_hint}" if self._unknown_hint else ""
            raise RegistryError(
                f"unknown {self.kind} {name!r}; registered: {', '.join(self.names())}{hint}"
            ) from None

    def provider(self, name: str) -> str:
        self.get(name)
        return self._providers[name]

    def names(self) -> list[str]:
        self._load_lazy()
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        self._load_lazy()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


def kebab_case(class_name: str) -> str:
    """``LSGANLoss`` -> ``lsgan-loss``, ``R1Penalty`` -> ``r1-penalty``: a class's name as a
    piece name."""
    words = re.findall(
        r"[A-Z]+[0-9]*(?=[A-Z][a-z]|$|[^A-Za-z0-9])|[A-Z]?[a-z0-9]+|[A-Z]+[0-9]*", class_name
    )
    return "-".join(word.lower() for word in words)


class NamedPiece:
    """A base class whose subclasses have a kebab-case ``name`` (shown in reports and listings):
    the one they set, else their class name in kebab-case."""

    name: str

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "name" not in cls.__dict__:
            cls.name = kebab_case(cls.__name__)
        elif not isinstance(cls.name, str) or not NAME_PATTERN.match(cls.name):
            raise RegistryError(
                f"{cls.__qualname__}.name must be kebab-case (e.g. 'wgan-gp'), got {cls.name!r}"
            )
