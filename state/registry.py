"""Named things a run's input may pick, by name only: skills, tools.

Input is data: it can select a registered name, never name a module to import.
Things register in Python (`Registry.register`) or, for a user's own package,
through a Python entry point in the registry's group, e.g.

    [project.entry-points."mas_graphs.skills"]
    my_skill = "my_package.skills:MySkill"

Every plugin of a group is loaded the first time the registry is consulted, whatever
name was asked for, so what gets imported never depends on a run's input.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any, Generic, TypeVar

T = TypeVar("T")
logger = logging.getLogger(__name__)


class UnknownNameError(ValueError):
    """A name that nothing registered; the message lists what is."""


class Registry(Generic[T]):
    def __init__(
        self,
        kind: str,
        group: str,
        accept: Callable[[str, Any], T],
        *,
        first_use: Callable[[], None] | None = None,
    ) -> None:
        """`accept(name, obj)` turns what a plugin exports into a `T`, or raises
        `TypeError` saying why it is not one; `first_use` runs once, before the plugins
        load (e.g. to import what registers the built-in items)."""
        self.kind, self.group = kind, group
        self._accept = accept
        self._first_use = first_use
        self._items: dict[str, T] = {}
        self._broken: dict[str, str] = {}  # plugin name -> why it did not load
        self._loaded = False
        # Re-entrant: what `first_use` imports may register items, or look one up.
        self._lock = threading.RLock()

    def register(self, name: str, item: T) -> T:
        self._items[name] = item
        self._broken.pop(name, None)
        return item

    def registered(self, name: str) -> T | None:
        """What is registered as `name` so far, loading nothing."""
        return self._items.get(name)

    def _load_plugins(self) -> None:
        with self._lock:
            if self._loaded:
                return
            self._loaded = True
            if self._first_use is not None:
                self._first_use()
            for point in entry_points(group=self.group):
                if point.name in self._items:
                    continue  # registered in Python: that wins
                try:
                    self._items[point.name] = self._accept(point.name, point.load())
                except Exception as error:  # a broken plugin must not break the others
                    self._broken[point.name] = f"{type(error).__name__}: {error}"
                    logger.warning(
                        "%s plugin %r (%s) did not load: %s",
                        self.kind,
                        point.name,
                        point.value,
                        error,
                    )

    def names(self) -> list[str]:
        self._load_plugins()
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        self._load_plugins()
        return name in self._items

    def get(self, name: str) -> T:
        self._load_plugins()
        if name in self._items:
            return self._items[name]
        if name in self._broken:
            raise UnknownNameError(
                f"{self.kind} '{name}' is registered by a plugin that did not load "
                f"({self._broken[name]})"
            )
        raise UnknownNameError(
            f"unknown {self.kind} '{name}'; registered: {', '.join(self.names()) or 'none'}"
        )

    def unknown(self, names: list[str]) -> list[str]:
        return [name for name in names if name not in self]
