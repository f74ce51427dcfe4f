"""Town reports as plain tables and JSON: what the command line and notebooks print.

:class:`TownReport` (built by :func:`gis_grid.town.town_report`) holds the results of one town's
parts (:data:`PARTS`); :meth:`TownReport.tables` renders a part as plain DataFrames (RangeIndex,
English column names, lengths rounded to 0.1 m), :meth:`TownReport.summary` gives its headline
numbers and :meth:`TownReport.to_dict` both, JSON-ready.

Examples
--------
>>> report = town_report(read_town(engine, "511703109"))  # doctest: +SKIP
>>> report.summary("ab_posts")["uncovered"]  # doctest: +SKIP
0
>>> report.tables("adjacency")["pairs"].columns.tolist()[:3]  # doctest: +SKIP
['a', 'b', 'shared_m']
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import pandas as pd

from gis_grid.errors import NotFoundError

if TYPE_CHECKING:
    import datetime as dt

    from gis_grid.adjacency import Adjacency
    from gis_grid.backup import ABPlan, AbsencePlan
    from gis_grid.balance import BalanceReport

__all__ = ["LABELS", "PARTS", "AssignmentCheck", "TownReport"]

T = TypeVar("T")

#: The parts of a report, in order (keys of :meth:`TownReport.tables`).
PARTS = ("assignment", "balance", "adjacency", "ab_posts", "absence")
#: Named barrier choices (the command line's ``--barriers``) -> natural line kinds.

#: Column -> bilingual label, Chinese over English: the command line's table headers;
#: ``frame.rename(columns=LABELS)`` gives a notebook the same.
LABELS = {
    "layer": "图层\nlayer", "points": "点数\npoints", "stored": "已存网格\nstored",
    "located": "落入网格\nlocated", "agree": "一致\nagree", "mismatched": "不一致\nmismatched",
    "unassigned": "格外\nunassigned", "max_distance_m": "最远 m\nmax distance",
    "grid": "网格\ngrid", "village": "村/社区\nvillage", "name": "名称\nname",
    "households": "户数\nhouseholds", "people": "人数\npeople", "pollution": "排污点\npollution",
    "hazards": "隐患\nhazards", "incidents": "事件\nincidents", "open_incidents": "未结\nopen",
    "members": "网格员数\nmembers", "member_ids": "网格员\nmember",
    "per_member": "人均\nper member",
    "band": "区间\nband", "area_km2": "面积 km²\narea", "home_m": "住处 m\nhome",
    "metric": "指标\nmetric", "mean": "均值\nmean", "min": "最小\nmin", "max": "最大\nmax",
    "max_dev_pct": "最大偏差 %\nmax dev", "cv": "变异系数\nCV", "gini": "基尼\nGini",
    "kind": "类别\nkind", "member": "网格员\nmember", "detail": "说明\ndetail",
    "a": "网格 A\ngrid A", "b": "网格 B\ngrid B", "shared_m": "共边 m\nshared",
    "barrier_m": "沿河 m\nbarrier", "barrier": "隔河\nbarrier",
    "same_village": "同村\nsame village",
    "exact": "精确\nexact", "group": "组\ngroup", "grids": "网格\ngrids", "load": "负荷\nload",
    "backup_grid": "AB岗网格\nbackup grid", "backup_member": "AB岗网格员\nbackup member",
    "link": "关系\nlink", "hops": "步\nhops", "gap_m": "间距 m\ngap", "absent": "缺岗\nabsent",
    "cover_member": "顶岗网格员\ncover member", "cover_grid": "顶岗者网格\ncover grid",
    "rule": "规则\nrule", "own_load": "本格\nown load", "covers": "代管\ncovers",
    "extra_load": "增加\nextra", "total_load": "合计\ntotal", "reason": "原因\nreason",
    "id": "编号\nid", "distance_m": "距离 m\ndistance", "nearest": "最近网格\nnearest",
}  # fmt: skip


@dataclass(frozen=True)
class AssignmentCheck:
    """Stored grid codes checked against the grids the points lie in.

    Attributes
    ----------
    layers
        Indexed by layer (:data:`~gis_grid.db.read.POINT_LAYERS`): ``points``, ``stored``
        (with a stored grid code), ``located`` (inside a grid), ``agree``, ``mismatched``,
        ``unassigned``, ``max_distance_m`` (farthest unassigned point from a grid).
    grids
        Indexed by grid code, as located: ``village``, ``name``, ``households``, ``people``,
        ``pollution``, ``hazards``, ``incidents``, ``open_incidents``.
    mismatches
        ``layer``, ``id``, ``stored``, ``located``: points whose stored code is not the grid
        they lie in (a NULL stored code included).
    unassigned
        ``layer``, ``id``, ``stored``, ``distance_m``, ``nearest``: points in no grid.
    located
        Layer -> grid code of every point (``None`` outside every grid), on the layer's index.
    """

    layers: pd.DataFrame
    grids: pd.DataFrame
    mismatches: pd.DataFrame
    unassigned: pd.DataFrame
    located: dict[str, pd.Series]

    @property
    def ok(self) -> bool:
        """True when every point lies in the grid stored for it."""
        return self.mismatches.empty and self.unassigned.empty


@dataclass(frozen=True)
class TownReport:
    """The parts of one town's report (see :func:`gis_grid.town.town_report`).

    Attributes
    ----------
    code, name, as_of
        The town and the instant of its grids (``None``: current).
    assignment
        The :class:`AssignmentCheck` (always computed).
    balance, adjacency, ab_posts
        The parts' results, ``None`` for a part that was not asked for (nor needed by one
        that was): :meth:`tables` and :meth:`summary` then say so.
    absence
        The cover plan for the absent members, or ``None`` when nobody is absent.
    barriers
        The line kinds used as adjacency barriers, and ``barrier_lines`` how many lines.
    """

    code: str
    name: str
    as_of: dt.datetime | None
    assignment: AssignmentCheck
    balance: BalanceReport | None
    adjacency: Adjacency | None
    ab_posts: ABPlan | None
    absence: AbsencePlan | None
    barriers: tuple[str, ...]
    barrier_lines: int

    def tables(self, part: str) -> dict[str, pd.DataFrame]:
        """Return the tables of one part (:data:`PARTS`), as plain DataFrames.

        Parameters
        ----------
        part
            ``"assignment"``, ``"balance"``, ``"adjacency"``, ``"ab_posts"`` or ``"absence"``.

        Returns
        -------
        dict of str to pandas.DataFrame
            Named tables with a RangeIndex; empty for ``"absence"`` without absent members.

        Raises
        ------
        NotFoundError
            An unknown part, or one the report was built without.
        """
        if part == "assignment":
            return _assignment_tables(self.assignment)
        if part == "balance":
            return _balance_tables(_need(self.balance, part))
        if part == "adjacency":
            return _adjacency_tables(_need(self.adjacency, part))
        if part == "ab_posts":
            return _ab_tables(_need(self.ab_posts, part), _need(self.balance, "balance"))
        if part == "absence":
            return {} if self.absence is None else _absence_tables(self.absence)
        msg = f"unknown report part {part!r}; use one of {', '.join(PARTS)}"
        raise NotFoundError(msg)

    def summary(self, part: str) -> dict[str, Any]:
        """Return the headline numbers of one part (:data:`PARTS`) as plain Python values.

        Raises
        ------
        NotFoundError
            An unknown part, or one the report was built without.
        """
        if part == "assignment":
            return _assignment_summary(self.assignment)
        if part == "balance":
            return _balance_summary(_need(self.balance, part))
        if part == "adjacency":
            summary = _adjacency_summary(_need(self.adjacency, part))
            return summary | {"barriers": list(self.barriers), "barrier_lines": self.barrier_lines}
        if part == "ab_posts":
            return _ab_summary(_need(self.ab_posts, part))
        if part == "absence":
            return {"absent": []} if self.absence is None else _absence_summary(self.absence)
        msg = f"unknown report part {part!r}; use one of {', '.join(PARTS)}"
        raise NotFoundError(msg)

    def to_dict(self, parts: Sequence[str] = PARTS) -> dict[str, Any]:
        """Return the town, and per part its summary and tables as lists of records (JSON-ready).

        Parameters
        ----------
        parts
            The parts to include (default: all of :data:`PARTS`).
        """
        out: dict[str, Any] = {
            "town": self.code,
            "name": self.name,
            "as_of": None if self.as_of is None else self.as_of.isoformat(),
        }
        for part in parts:
            tables = self.tables(part)
            out[part] = {"summary": self.summary(part)} | {
                name: _records(frame) for name, frame in tables.items()
            }
        return out


def _need(value: T | None, part: str) -> T:
    """Return a part's result, or say that the report was built without it."""
    if value is None:
        msg = f"the report was built without {part!r}: pass it in town_report(..., parts=...)"
        raise NotFoundError(msg)
    return value


def _assignment_summary(check: AssignmentCheck) -> dict[str, Any]:
    layers = check.layers
    return {
        "points": int(layers["points"].sum()),
        "mismatched": int(layers["mismatched"].sum()),
        "unassigned": int(layers["unassigned"].sum()),
        "ok": check.ok,
    }


def _balance_summary(balance: BalanceReport) -> dict[str, Any]:
    grids, issues = balance.grids, balance.issues
    return {
        "by": balance.by,
        "band": None if balance.band is None else list(balance.band),
        "grids": len(grids),
        "members": int(grids["members"].sum()),
        "households": int(grids["households"].sum()),
        "people": int(grids["people"].sum()),
        "outside_band": int(issues["kind"].isin(["below_band", "above_band"]).sum()),
        "issues": len(issues),
    }


def _adjacency_summary(adjacency: Adjacency) -> dict[str, Any]:
    pairs = adjacency.pairs
    linked = set(pairs["a"]) | set(pairs["b"])
    return {
        "grids": len(adjacency.ids),
        "pairs": len(pairs),
        "barrier_pairs": int(pairs["barrier"].sum()),
        "isolated": [str(g) for g in adjacency.ids if g not in linked],
    }


def _ab_summary(plan: ABPlan) -> dict[str, Any]:
    kinds = [len(group) for group in plan.groups]
    return {
        "groups": len(kinds),
        "pairs": kinds.count(2),
        "rings": len(kinds) - kinds.count(2),
        "links": _plain(plan.cover["link"].value_counts().to_dict()),
        "uncovered": len(plan.uncovered),
    }


def _absence_summary(plan: AbsencePlan) -> dict[str, Any]:
    return {
        "absent": sorted({m for a in plan.assignments["absent"] for m in a.split(",")} - {""}),
        "covered": len(plan.assignments),
        "uncovered": len(plan.uncovered),
        "max_total_load": _plain(plan.load["total_load"].max()),
    }


def _plain(value: Any) -> Any:
    """Return a numpy scalar (or a dict of them) as plain Python, for JSON."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    return value


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON-ready dicts (NaN -> None, numpy scalars -> Python)."""
    records: list[dict[str, Any]] = json.loads(
        frame.to_json(orient="records", force_ascii=False, double_precision=6)
    )
    return records


# --- plain tables ---------------------------------------------------------------------------


def _assignment_tables(check: AssignmentCheck) -> dict[str, pd.DataFrame]:
    return {
        "layers": check.layers.reset_index(),
        "grids": check.grids.reset_index(),
        "mismatches": check.mismatches,
        "unassigned": check.unassigned,
    }


def _balance_tables(report: BalanceReport) -> dict[str, pd.DataFrame]:
    grids = report.grids.copy()
    if report.members is not None and len(report.members):
        home = report.members.groupby("grid")["home_m"].max()
        grids["home_m"] = home.reindex(grids.index).round(1)
    else:
        grids["home_m"] = np.nan
    grids["area_km2"] = grids["area_km2"].round(3)
    grids["per_member"] = grids["per_member"].round(1)
    spread = report.spread.round(4).rename_axis("metric").reset_index()
    columns = [
        "grid", "members", "member_ids", "households", "people", "per_member", "band",
        "area_km2", "pollution", "hazards", "open_incidents", "home_m",
    ]  # fmt: skip
    return {
        "grids": grids.rename_axis("grid").reset_index()[columns],
        "spread": spread,
        "issues": report.issues.reset_index(drop=True),
    }


def _adjacency_tables(adjacency: Adjacency) -> dict[str, pd.DataFrame]:
    pairs = adjacency.pairs.copy()
    village = 12  # a grid code starts with its 12-digit village code
    pairs["same_village"] = (
        pairs["a"].astype(str).str[:village] == pairs["b"].astype(str).str[:village]
    )
    pairs[["shared_m", "barrier_m"]] = pairs[["shared_m", "barrier_m"]].round(1)
    return {"pairs": pairs.reset_index(drop=True)}


def _ab_tables(plan: ABPlan, balance: BalanceReport) -> dict[str, pd.DataFrame]:
    cover = plan.cover.copy()
    cover.insert(0, "member", balance.grids["member_ids"].reindex(cover.index).to_numpy())
    cover.insert(1, "load", plan.load.reindex(cover.index).to_numpy())
    cover[["shared_m", "gap_m"]] = cover[["shared_m", "gap_m"]].round(1)
    groups = pd.DataFrame(
        {
            "group": range(len(plan.groups)),
            "kind": ["pair" if len(ring) == 2 else "ring" for ring in plan.groups],
            "grids": [_ring_text(ring) for ring in plan.groups],
            "load": [float(plan.load.reindex(list(ring)).sum()) for ring in plan.groups],
        }
    )
    return {
        "cover": cover.rename_axis("grid").reset_index(),
        "groups": groups,
        "uncovered": plan.uncovered.reset_index(drop=True),
    }


def _ring_text(ring: Sequence[object]) -> str:
    """Write ``A ⇄ B`` for a pair, ``A ← B ← C ← A`` for a ring (B's member covers A, ...)."""
    if len(ring) == 2:
        return f"{ring[0]} ⇄ {ring[1]}"
    return " ← ".join(map(str, [*ring, ring[0]]))


def _absence_tables(plan: AbsencePlan) -> dict[str, pd.DataFrame]:
    return {
        "assignments": plan.assignments.reset_index(drop=True),
        "load": plan.load.rename_axis("member").reset_index(),
        "uncovered": plan.uncovered.reset_index(drop=True),
    }
