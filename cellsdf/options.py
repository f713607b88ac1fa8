"""Plain values from command options, and the rules that say what an option must be.

A stage states each of its options once, as a field of a frozen dataclass next to the function it feeds
(:func:`option` gives the field its default and its :data:`Rule`); the dataclass checks itself on creation,
the command line checks a composed config with the same rules (:func:`rules_of`), and a test compares the
dataclasses with the YAML files in ``conf/``. Rules raise :class:`~cellsdf.errors.InputError` naming the
option, which the command line prints as one line with exit code 2.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import MISSING, Field, dataclass, field, fields
from typing import Any

from omegaconf import ListConfig, OmegaConf

from cellsdf.errors import InputError

Rule = Callable[[str, object], None]
# Seeds seed NumPy's legacy generators too, which take 32-bit unsigned integers.
SEED_MAX = 2**32 - 1
# Lightning's max_time as text: days:hours:minutes:seconds.
_DURATION = re.compile(r"^\d+:\d{1,2}:\d{1,2}:\d{1,2}$")


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass(frozen=True)
class Whole:
    """A whole number in ``[least, most]`` (booleans are not numbers here: ``n=true`` is a mistake)."""

    least: int = 0
    most: int | None = None
    null: bool = False

    @property
    def expects(self) -> str:
        """What a value must be, in words (error messages and the docs' option tables)."""
        span = f">= {self.least}" if self.most is None else f"in [{self.least}, {self.most}]"
        return f"an integer {span}{_or_null(self.null)}"

    def __call__(self, key: str, value: object) -> None:
        """Raise InputError naming ``key`` unless ``value`` keeps the rule."""
        if value is None and self.null:
            return
        within = self.most is None or (isinstance(value, int) and value <= self.most)
        if not isinstance(value, int) or isinstance(value, bool) or value < self.least or not within:
            raise InputError(key, f"must be {self.expects}, got {value!r}")


@dataclass(frozen=True)
class Real:
    """A finite number in ``[low, high]``; ``above`` makes the lower bound exclusive (a positive number)."""

    low: float = -math.inf
    high: float = math.inf
    above: bool = False
    null: bool = False

    @property
    def expects(self) -> str:
        """What a value must be, in words (error messages and the docs' option tables)."""
        span = "" if self.low == -math.inf and self.high == math.inf else f" {self._span()}"
        return f"a finite number{span}{_or_null(self.null)}"

    def __call__(self, key: str, value: object) -> None:
        """Raise InputError naming ``key`` unless ``value`` keeps the rule."""
        if value is None and self.null:
            return
        if not _is_number(value) or not math.isfinite(value):  # type: ignore[arg-type]
            raise InputError(key, f"must be a finite number{_or_null(self.null)}, got {value!r}")
        low_ok = value > self.low if self.above else value >= self.low  # type: ignore[operator]
        if not low_ok or value > self.high:  # type: ignore[operator]
            raise InputError(key, f"must be a number {self._span()}{_or_null(self.null)}, got {value!r}")

    def _span(self) -> str:
        if self.high == math.inf:
            return "> 0" if self.above and self.low == 0 else f"{'>' if self.above else '>='} {self.low:g}"
        return f"in {'(' if self.above else '['}{self.low:g}, {self.high:g}]"


@dataclass(frozen=True)
class OneOf:
    """One of a few spellings (a choice of method, format or line)."""

    choices: tuple
    null: bool = False

    def __call__(self, key: str, value: object) -> None:
        """Raise InputError naming ``key`` unless ``value`` keeps the rule."""
        if (value is None and self.null) or (isinstance(value, str) and value in self.choices):
            return
        raise InputError(key, f"choose {self.expects}, got {value!r}")

    @property
    def expects(self) -> str:
        """What a value must be, in words (error messages and the docs' option tables)."""
        return f"one of {', '.join(map(str, self.choices))}{_or_null(self.null)}"


@dataclass(frozen=True)
class Flag:
    """True or false: YAML's spellings only (``overwrite=no`` is text, which Python would count as true)."""

    expects = "true or false"

    def __call__(self, key: str, value: object) -> None:
        """Raise InputError naming ``key`` unless ``value`` keeps the rule."""
        if not isinstance(value, bool):
            raise InputError(key, f"must be {self.expects}, got {value!r}")


@dataclass(frozen=True)
class Text:
    """A path or name given as text."""

    null: bool = True

    def __call__(self, key: str, value: object) -> None:
        """Raise InputError naming ``key`` unless ``value`` keeps the rule."""
        if (value is None and self.null) or (isinstance(value, str) and value.strip()):
            return
        raise InputError(key, f"must be {self.expects}, got {value!r}")

    @property
    def expects(self) -> str:
        """What a value must be, in words (error messages and the docs' option tables)."""
        return f"a path or name{_or_null(self.null)}"


@dataclass(frozen=True)
class Duration:
    """Lightning's ``max_time`` as ``DD:HH:MM:SS``."""

    expects = "a duration DD:HH:MM:SS (e.g. 00:01:00:00) or null"

    def __call__(self, key: str, value: object) -> None:
        """Raise InputError naming ``key`` unless ``value`` keeps the rule."""
        if value is None or (isinstance(value, str) and _DURATION.match(value)):
            return
        raise InputError(key, f"must be {self.expects}, got {value!r}")


@dataclass(frozen=True)
class ListOf:
    """A list whose items keep ``item``; ``length`` fixes its length, ``one`` also takes a single item."""

    item: Rule
    length: int | None = None
    least: int = 0
    null: bool = False
    one: bool = False

    @property
    def expects(self) -> str:
        """What a value must be, in words (error messages and the docs' option tables)."""
        size = f"{self.least} or more " if self.least else ""
        size = f"{self.length} " if self.length is not None else size
        single = ", or one" if self.one else ""
        return f"a list of {size}items, each {self.item.expects}{single}{_or_null(self.null)}"

    def __call__(self, key: str, value: object) -> None:
        """Raise InputError naming ``key`` unless ``value`` keeps the rule."""
        if value is None and self.null:
            return
        if self.one and not isinstance(value, (list, tuple, ListConfig)):
            self.item(key, value)
            return
        if not isinstance(value, (list, tuple, ListConfig)):
            raise InputError(key, f"must be a list, e.g. [a,b]{_or_null(self.null)}, got {value!r}")
        if (self.length is not None and len(value) != self.length) or len(value) < self.least:
            size = f"{self.length}" if self.length is not None else f"at least {self.least}"
            raise InputError(key, f"must be a list of {size} items, got {len(value)}")
        for i, item in enumerate(value):
            self.item(f"{key}[{i}]", item)


@dataclass(frozen=True)
class Checked:
    """A value whose check belongs to the library function that reads it; its message is that function's."""

    check: Callable[[str, object], object]
    expects: str = "a value the reading function accepts"

    def __call__(self, key: str, value: object) -> None:
        """Raise InputError naming ``key`` unless ``value`` keeps the rule."""
        self.check(key, OmegaConf.to_container(value) if isinstance(value, ListConfig) else value)


@dataclass(frozen=True)
class Anything:
    """A value that a library checks itself when it uses it (Lightning's ``devices``, lift's view list)."""

    expects = "any value, checked by the library that reads it"

    def __call__(self, key: str, value: object) -> None:
        """Raise InputError naming ``key`` unless ``value`` keeps the rule."""
        return


def _or_null(null: bool) -> str:
    return " or null" if null else ""


POSITIVE = Real(0, above=True)
NONNEG = Real(0)
FRACTION = Real(0, 1)


def option(default: Any, rule: Rule) -> Any:
    """Declare a dataclass field: its default and the rule its value must keep.

    Parameters
    ----------
    default : object
        The default (a list or tuple default is copied for each instance).
    rule : Rule
        Called as ``rule(name, value)``; raises InputError for a bad value.

    Returns
    -------
    dataclasses.Field
    """
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata={"rule": rule})
    return field(default=default, metadata={"rule": rule})


def nested(options: type) -> Any:
    """Declare a dataclass field that holds another options dataclass (``mesh.smoothing``), default made."""
    return field(default_factory=options, metadata={"nested": options})


def check_fields(options: object, *, prefix: str = "") -> None:
    """Check every declared field of an options dataclass against its rule; raise at the first bad one.

    Parameters
    ----------
    options : dataclass instance
        Its fields declared with :func:`option`.
    prefix : str
        Put before each field's name in the message (``sampler.``), as the command line names it.

    Raises
    ------
    InputError
        Naming the option, what it must be and what it was.

    Examples
    --------
    >>> @dataclass(frozen=True)
    ... class Cells:
    ...     n: int = option(4, Whole(1))
    >>> check_fields(Cells(n=0))
    Traceback (most recent call last):
    ...
    cellsdf.errors.InputError: n: must be an integer >= 1, got 0
    """
    for item in fields(options):
        rule = item.metadata.get("rule")
        if rule is not None:
            rule(prefix + item.name, getattr(options, item.name))


def rules_of(options: type, prefix: str = "") -> dict[str, Rule]:
    """Return the rule of every declared field of an options dataclass, by dotted name (nested included).

    Examples
    --------
    >>> @dataclass(frozen=True)
    ... class Cells:
    ...     n: int = option(4, Whole(1))
    >>> list(rules_of(Cells, "generate."))
    ['generate.n']
    """
    found: dict[str, Rule] = {}
    for item in fields(options):
        if "rule" in item.metadata:
            found[prefix + item.name] = item.metadata["rule"]
        elif "nested" in item.metadata:
            found.update(rules_of(item.metadata["nested"], f"{prefix}{item.name}."))
    return found


def defaults_of(options: type) -> dict[str, Any]:
    """Return the default of every field of an options dataclass, nested ones as dicts (as YAML holds them).

    Examples
    --------
    >>> @dataclass(frozen=True)
    ... class Cells:
    ...     n: int = option(4, Whole(1))
    >>> defaults_of(Cells)
    {'n': 4}
    """
    found: dict[str, Any] = {}
    for item in fields(options):
        if "nested" in item.metadata:
            found[item.name] = defaults_of(item.metadata["nested"])
        elif item.default is not MISSING:
            found[item.name] = item.default
        elif item.default_factory is not MISSING:
            found[item.name] = item.default_factory()
    return found


def pick(values: Mapping, options: type) -> dict[str, Any]:
    """Return the entries of a command's options that are fields of ``options`` (plain values, not OmegaConf).

    Examples
    --------
    >>> @dataclass(frozen=True)
    ... class Cells:
    ...     n: int = option(4, Whole(1))
    >>> pick({"n": 2, "out": "cells"}, Cells)
    {'n': 2}
    """
    names = {item.name for item in fields(options) if isinstance(item, Field)}
    plain = OmegaConf.to_container(values, resolve=True) if OmegaConf.is_config(values) else dict(values)
    return {key: value for key, value in plain.items() if key in names}


def as_list(value: object) -> list:
    """Return a config entry that may be one value or a list as a plain list.

    Examples
    --------
    >>> as_list("tiff"), as_list(["tiff", "mesh"])
    (['tiff'], ['tiff', 'mesh'])
    """
    if isinstance(value, ListConfig):
        return list(OmegaConf.to_container(value, resolve=True))
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]
