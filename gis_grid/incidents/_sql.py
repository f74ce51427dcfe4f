"""SQL of the incident workflow: one statement per step, every value a bound parameter."""

from __future__ import annotations

__all__ = [
    "ATTACHMENTS_SQL",
    "ATTACHMENT_SQL",
    "DETAIL_SQL",
    "EVENTS_SQL",
    "INSERT_ATTACHMENT_SQL",
    "INSERT_EVENT_SQL",
    "INSERT_INCIDENT_SQL",
    "LOCATE_SQL",
    "LOCK_INCIDENT_SQL",
    "OVERDUE_ITEMS_SQL",
    "OVERDUE_SQL",
    "RESPONSIBLE_SQL",
    "UPDATE_INCIDENT_SQL",
]

#: Where a CGCS2000 point lies: the town and current grid covering it, and the nearest town
#: and current grid with their distance in metres (geodesic, on the CGCS2000 ellipsoid).
LOCATE_SQL = """
WITH pt AS (SELECT ST_SetSRID(ST_MakePoint(:lon, :lat), 4490) AS g)
SELECT
    (SELECT t.code FROM towns t WHERE ST_Covers(t.geom, pt.g) ORDER BY t.code LIMIT 1)
        AS town_code,
    current_grid_at(pt.g) AS grid_code,
    nt.code AS nearest_town_code, nt.name AS nearest_town, nt.metres AS town_metres,
    ng.code AS nearest_grid_code, ng.metres AS grid_metres
FROM pt
LEFT JOIN LATERAL (
    SELECT t.code, t.name, ST_Distance(t.geom::geography, pt.g::geography) AS metres
    FROM towns t ORDER BY t.geom <-> pt.g LIMIT 1
) nt ON true
LEFT JOIN LATERAL (
    SELECT g.code, ST_Distance(g.geom::geography, pt.g::geography) AS metres
    FROM grids g WHERE g.valid_to IS NULL ORDER BY g.geom <-> pt.g LIMIT 1
) ng ON true
"""

#: The grid's appointed member and its current AB-post cover's appointed member, each with
#: whether they are present on ``:on`` (no absence covering that day).
RESPONSIBLE_SQL = """
WITH own AS (
    SELECT m.id, NOT EXISTS (
        SELECT 1 FROM absences a
        WHERE a.member_id = m.id AND :on BETWEEN a.starts_on AND a.ends_on
    ) AS present
    FROM members m
    WHERE m.grid_code = :grid AND m.status = 'appointed'
    ORDER BY m.code LIMIT 1
), cover AS (
    SELECT m.id, NOT EXISTS (
        SELECT 1 FROM absences a
        WHERE a.member_id = m.id AND :on BETWEEN a.starts_on AND a.ends_on
    ) AS present
    FROM ab_posts p
    JOIN members m ON m.grid_code = p.cover_grid_code AND m.status = 'appointed'
    WHERE p.grid_code = :grid AND p.valid_to IS NULL
    ORDER BY m.code LIMIT 1
)
SELECT own.id AS own_id, own.present AS own_present,
       cover.id AS cover_id, cover.present AS cover_present
FROM (SELECT 1) one LEFT JOIN own ON true LEFT JOIN cover ON true
"""

# The trigger of migration 0003 fills village_code and grid_code from the point.
INSERT_INCIDENT_SQL = """
INSERT INTO incidents (task_type_code, title, description, geom, reported_by, member_id,
                       status, source)
VALUES (:task_type_code, :title, :description, ST_SetSRID(ST_MakePoint(:lon, :lat), 4490),
        :actor, :member_id, 'reported', 'api')
RETURNING id, reported_at, village_code, grid_code
"""

INSERT_EVENT_SQL = """
INSERT INTO incident_events (incident_id, from_status, to_status, actor, note)
VALUES (:incident_id, CAST(:from_status AS incident_status), CAST(:to_status AS incident_status),
        :actor, :note)
RETURNING id, at
"""

#: The incident's row, locked until the transaction ends: a concurrent transition waits, then
#: sees the new status (READ COMMITTED re-reads the locked row), so only one of two requests
#: from the same state can succeed.
LOCK_INCIDENT_SQL = """
SELECT t.id, t.status::text AS status, t.reported_at, t.task_type_code,
       tt.name AS task_type, tt.approval_state::text AS approval_state, now() AS now
FROM incidents t JOIN task_types tt ON tt.code = t.task_type_code
WHERE t.id = :id
FOR UPDATE OF t
"""

UPDATE_INCIDENT_SQL = """
UPDATE incidents SET
    status = CAST(:to_status AS incident_status),
    dispatched_at = CASE WHEN :dispatch THEN now() ELSE dispatched_at END,
    deadline = CASE WHEN :dispatch THEN :deadline ELSE deadline END,
    closed_at = CASE WHEN :close THEN now() ELSE closed_at END,
    evaluation = coalesce(:evaluation, evaluation)
WHERE id = :id
"""

#: What the single-incident view of the read API lacks: the workflow's own columns.
DETAIL_SQL = """
SELECT t.description, t.reported_by, t.closed_at, t.evaluation,
       g.code AS grid_code, g.name AS grid_name, g.version AS grid_version,
       m.code AS member_code, m.name AS member_name, m.phone AS member_phone
FROM incidents t
LEFT JOIN grids g ON g.code = t.grid_code AND g.valid_to IS NULL
LEFT JOIN members m ON m.id = t.member_id
WHERE t.id = :id
"""

EVENTS_SQL = """
SELECT e.id, e.from_status::text AS from_status, e.to_status::text AS to_status, e.at,
       e.actor, e.note,
       coalesce(array_agg(a.id ORDER BY a.id) FILTER (WHERE a.id IS NOT NULL), '{}')
           AS attachments
FROM incident_events e
LEFT JOIN attachments a ON a.event_id = e.id
WHERE e.incident_id = :id
GROUP BY e.id
ORDER BY e.at, e.id
"""

INSERT_ATTACHMENT_SQL = """
INSERT INTO attachments
    (incident_id, event_id, filename, content_type, size, sha256, data, uploaded_by)
VALUES (:incident_id, :event_id, :filename, :content_type, :size, :sha256, :data, :uploaded_by)
RETURNING id, created_at
"""

_ATTACHMENT_COLUMNS = """
SELECT a.id, a.incident_id, a.event_id, a.filename, a.content_type, a.size, a.sha256,
       a.created_at
"""
ATTACHMENTS_SQL = (
    f"{_ATTACHMENT_COLUMNS} FROM attachments a WHERE a.incident_id = :id ORDER BY a.id"
)
ATTACHMENT_SQL = f"{_ATTACHMENT_COLUMNS}, a.data FROM attachments a WHERE a.id = :id"

# --- supervision (督办) ------------------------------------------------------------------------

#: Open incidents past their deadline, with days overdue and the responsible member: the one
#: assigned at report time, or (incidents recorded before assignment) the grid's appointed one.
_OVERDUE_CTE = """
WITH o AS (
    SELECT t.id, t.task_type_code, t.status::text AS status, t.deadline, t.grid_code,
           t.village_code, v.name AS village,
           extract(epoch FROM (now() - t.deadline)) / 86400.0 AS days,
           coalesce(t.member_id, (
               SELECT mm.id FROM members mm
               WHERE mm.grid_code = t.grid_code AND mm.status = 'appointed'
               ORDER BY mm.code LIMIT 1
           )) AS member_id
    FROM incidents t LEFT JOIN villages v ON v.code = t.village_code
    WHERE t.deadline < now() AND t.status::text NOT IN ('closed', 'evaluated')
      AND {where}
)
"""

OVERDUE_SQL = (
    _OVERDUE_CTE
    + """
SELECT 'grid' AS level, o.grid_code AS key, min(o.village_code) AS village_code,
       min(o.village) AS village, NULL::text AS member_name, count(*) AS overdue,
       max(o.days) AS max_days, avg(o.days) AS mean_days
FROM o GROUP BY o.grid_code
UNION ALL
SELECT 'member', m.code, min(o.village_code), min(o.village), min(m.name), count(*),
       max(o.days), avg(o.days)
FROM o LEFT JOIN members m ON m.id = o.member_id GROUP BY m.code
ORDER BY 1, 6 DESC, 2
"""
)

OVERDUE_ITEMS_SQL = (
    _OVERDUE_CTE
    + """
SELECT o.id, o.task_type_code, o.status, o.deadline, o.days, o.grid_code, o.village_code,
       o.village, m.code AS member_code, m.name AS member_name
FROM o LEFT JOIN members m ON m.id = o.member_id
ORDER BY o.days DESC, o.id
LIMIT :limit
"""
)
