"""Mergeable statistics of a family of value maps on a grid of parameters: a search in passes.

Some methods fit a parameter that no fixed set of moments determines (``power``'s lambda:
its likelihood depends on the variance of the *transformed* values). They search for it
over the data in passes: each pass evaluates the family ``g(x; theta)`` on a grid of
``theta`` and gathers, per grid point, the exact moments of ``g(x; theta)`` (a
:class:`~normcore.stats.MomentsState`, so any split of the rows merges to the same state)
and the sum of a summand ``h(x)``. The method then picks the next, finer grid around the
best point, or stops (:mod:`normcore.transforms.power`).

What a pass evaluates is a :class:`SearchRequest` (the family and the grids, one shared by
every row and, from the second pass on, one per key value); what it gathers is a
:class:`SearchState`, whose grids are told apart by their points, so the states of every
pass and every key merge by plain union. A grid point is usable for a set of rows when its
count equals the rows' finite count (a point whose transform overflowed counts fewer).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from normcore.stats.moments import MomentsState

#: A grid: its parameter values, in increasing order.
Grid = tuple[float, ...]


@dataclass(frozen=True)
class SearchRequest:
    """What one pass of a search evaluates for one column.

    Attributes
    ----------
    family : callable
        ``family(values, theta) -> values``: the map evaluated at each grid point
        (finite float64 values in, float64 out).
    summand : callable
        ``summand(values) -> values``, summed over the rows (the likelihood's Jacobian).
    grid : tuple of float
        The grid every row is evaluated on (the search over all rows).
    key_grids : mapping of str to tuple of float
        A grid per key value, evaluated on that key's rows as well (per-key searches
        after the first pass).
    """

    family: Callable[[np.ndarray, float], np.ndarray]
    summand: Callable[[np.ndarray], np.ndarray]
    grid: Grid
    key_grids: Mapping[str, Grid] = field(default_factory=dict)

    def grids_for(self, key: str | None) -> list[Grid]:
        """The grids rows of ``key`` are evaluated on."""
        own = self.key_grids.get(key) if key is not None else None
        return [self.grid] if own is None or own == self.grid else [self.grid, own]


@dataclass
class GridState:
    """Moments of ``family(x; theta)`` at each point of one grid, and ``sum(summand(x))``."""

    points: Grid
    moments: list[MomentsState]
    summand_total: float = 0.0

    @classmethod
    def create(cls, points: Grid) -> GridState:
        return cls(points, [MomentsState() for _ in points])

    def add(self, values: np.ndarray, request: SearchRequest) -> None:
        for point, moments in zip(self.points, self.moments, strict=True):
            moments.add_values(np.ascontiguousarray(request.family(values, point), dtype=np.float64))
        self.summand_total += math.fsum(request.summand(values))

    def merge(self, other: GridState) -> None:
        for mine, theirs in zip(self.moments, other.moments, strict=True):
            mine.merge(theirs)
        self.summand_total += other.summand_total

    def to_dict(self) -> dict[str, Any]:
        return {
            "points": list(self.points),
            "moments": [m.to_dict() for m in self.moments],
            "summand_total": self.summand_total,
        }

    @classmethod
    def from_dict(cls, state: Mapping[str, Any]) -> GridState:
        return cls(
            tuple(float(p) for p in state["points"]),
            [MomentsState.from_dict(m) for m in state["moments"]],
            float(state["summand_total"]),
        )


class SearchState:
    """Every grid evaluated so far on one set of rows (a union over passes and keys)."""

    __slots__ = ("grids",)

    def __init__(self, grids: dict[Grid, GridState] | None = None) -> None:
        self.grids = grids if grids is not None else {}

    def add_values(self, values: np.ndarray, request: SearchRequest, key: str | None) -> SearchState:
        """Fold finite float64 ``values`` of rows of ``key`` into the grids ``request`` names for it."""
        for grid in request.grids_for(key):
            if grid not in self.grids:
                self.grids[grid] = GridState.create(grid)
            self.grids[grid].add(values, request)
        return self

    def merge(self, other: SearchState) -> SearchState:
        """Fold ``other`` in: the same grid merges, a new one is added (copied)."""
        for grid, state in other.grids.items():
            if grid in self.grids:
                self.grids[grid].merge(state)
            else:
                self.grids[grid] = GridState.from_dict(state.to_dict())
        return self

    def points(self, count: int) -> list[tuple[float, MomentsState, float, Grid]]:
        """``(theta, moments, summand total, grid)`` of every grid point evaluated on exactly
        ``count`` finite values (the rows in question, with no overflow), by ``theta``."""
        found = [
            (point, moments, grid_state.summand_total, grid)
            for grid, grid_state in self.grids.items()
            for point, moments in zip(grid, grid_state.moments, strict=True)
            if moments.count == count
        ]
        return sorted(found, key=lambda item: item[0])

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe state: the list of grid states."""
        return {"grids": [state.to_dict() for state in self.grids.values()]}

    @classmethod
    def from_dict(cls, state: Mapping[str, Any]) -> SearchState:
        """Inverse of :meth:`to_dict`."""
        grids = [GridState.from_dict(g) for g in state["grids"]]
        return cls({g.points: g for g in grids})


def linspace_grid(center: float, half_width: float, points: int) -> Grid:
    """``points`` evenly spaced values over ``[center - half_width, center + half_width]``."""
    return tuple(float(v) for v in np.linspace(center - half_width, center + half_width, points))


__all__ = ["Grid", "GridState", "SearchRequest", "SearchState", "linspace_grid"]
