"""Natural lines (rivers, streams, ridgelines, roads): kinds, ranks and class names.

The lines live in one table, ``natural_lines`` (:class:`gis_grid.db.models.NaturalLine`),
one ``kind`` per row. Within a kind, ``rank`` orders the lines with **1 the most important**,
whatever the source's own scale, so that "the major barriers" is always ``rank <= k``:

- rivers: the GSHHG WDB-II level (1 double-lined, 2 permanent major, 3 additional major,
  4 additional ... 12 irrigation canals);
- streams: the class by area drained (:data:`STREAM_CLASSES`: river 1, creek 2, brook 3);
- roads: the administrative class (:data:`ROAD_CLASSES`: county 1, township 2, village 3).

:func:`class_label_sql` turns a rank back into the class name in SQL, for the API and exports.
"""

from __future__ import annotations

from collections.abc import Mapping

from gis_grid.db.models import NaturalLineKind

__all__ = ["LINE_CLASSES", "ROAD_CLASSES", "STREAM_CLASSES", "class_label_sql"]

#: Stream class (the sample's ``streams.kind``, by area drained) -> rank.
STREAM_CLASSES: Mapping[str, int] = {"river": 1, "creek": 2, "brook": 3}

#: Road class (the sample's ``roads.kind``: 县道, 乡道, 村道) -> rank.
ROAD_CLASSES: Mapping[str, int] = {"county": 1, "township": 2, "village": 3}

#: Kind -> class name -> rank, for the kinds whose rank comes from a named class.
LINE_CLASSES: Mapping[NaturalLineKind, Mapping[str, int]] = {
    NaturalLineKind.STREAM: STREAM_CLASSES,
    NaturalLineKind.ROAD: ROAD_CLASSES,
}


def class_label_sql(*, kind: str = "t.kind", rank: str = "t.rank") -> str:
    """Return SQL giving the class name of a line from its kind and rank (NULL if none).

    Parameters
    ----------
    kind, rank
        SQL expressions of the line's kind and rank columns.

    Returns
    -------
    str
        A ``CASE`` expression; the names are our constants, never user input.

    Examples
    --------
    >>> "WHEN t.kind = 'road' AND t.rank = 1 THEN 'county'" in class_label_sql()
    True
    """
    whens = " ".join(
        f"WHEN {kind} = '{line_kind.value}' AND {rank} = {value} THEN '{name}'"
        for line_kind, classes in LINE_CLASSES.items()
        for name, value in classes.items()
    )
    return f"(CASE {whens} END)"
