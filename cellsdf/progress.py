"""Progress bars for long work (rich), off in library calls unless asked for."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

T = TypeVar("T")


def track(items: Iterable[T], description: str, total: int | None = None, show: bool = True) -> Iterator[T]:
    """Iterate over ``items`` with a progress bar on stderr when ``show`` is true.

    Parameters
    ----------
    items : iterable
        The work.
    description : str
        What the bar says.
    total : int, optional
        Number of items, when ``items`` has no length.
    show : bool
        Draw the bar; False iterates silently.

    Yields
    ------
    object
        The items, unchanged.
    """
    if not show:
        yield from items
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=False) as progress:
        yield from progress.track(items, total=total, description=description)
