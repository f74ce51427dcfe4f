"""SQL of the member registry, selection workflow, AB posts and absences.

Every value is a bound parameter; statements that decide on a row lock it first (``FOR
UPDATE``) so that two requests cannot both appoint a member to one grid or both record
overlapping absences.
"""

from __future__ import annotations

__all__: list[str] = []

#: One member with everything the registry shows (the phone is masked by the caller).
MEMBER = """
SELECT m.id, m.code, m.name, m.gender::text AS gender, m.birth_date, m.education, m.phone,
       m.status::text AS status, m.grid_code, g.name AS grid, m.village_code,
       v.name AS village, m.party_member, m.veteran, m.unemployed_graduate,
       m.criminal_record, m.relative_criminal_record, m.organised_petitions, m.cult_member,
       m.applied_on, m.appointed_on, m.dismissed_on, m.home IS NOT NULL AS has_home,
       CASE WHEN m.home IS NULL OR g.geom IS NULL THEN NULL
            ELSE ST_Covers(g.geom, m.home) END AS lives_in_grid
FROM members m
LEFT JOIN grids g ON g.code = m.grid_code AND g.valid_to IS NULL
LEFT JOIN villages v ON v.code = m.village_code
WHERE {where}
ORDER BY m.code
"""

LOCK_MEMBER = "SELECT id FROM members WHERE code = :code FOR UPDATE"

CURRENT_GRID = """
SELECT g.code, g.name, g.village_code, left(g.village_code, 9) AS town_code
FROM grids g WHERE g.code = :code AND g.valid_to IS NULL
"""

ANY_GRID_VERSION = "SELECT max(valid_to) FROM grids WHERE code = :code"

VILLAGE = "SELECT code, name, town_code FROM villages WHERE code = :code"

#: Whether a point lies in, or within :data:`HOME_REACH_M` of, the village's town.
HOME_NEAR_TOWN = """
SELECT ST_DWithin(t.geom::geography, ST_SetSRID(ST_MakePoint(:lon, :lat), 4490)::geography,
                  :reach) AS near, t.code, t.name
FROM towns t JOIN villages v ON v.town_code = t.code WHERE v.code = :village
"""

APPOINTED_IN_GRID = """
SELECT id, code, name FROM members
WHERE grid_code = :grid AND status = 'appointed' FOR UPDATE
"""

HISTORY = """
SELECT c.from_status::text AS from_status, c.to_status::text AS to_status, c.changed_at,
       c.actor, c.note
FROM member_status_changes c WHERE c.member_id = :member_id ORDER BY c.changed_at, c.id
"""

RECORD_CHANGE = """
INSERT INTO member_status_changes (member_id, from_status, to_status, actor, note)
VALUES (:member_id, CAST(:from_status AS member_status), CAST(:to_status AS member_status),
        :actor, :note)
"""

SET_STATUS = """
UPDATE members SET status = CAST(:status AS member_status),
       appointed_on = COALESCE(:appointed_on, appointed_on),
       dismissed_on = COALESCE(:dismissed_on, dismissed_on),
       grid_code = COALESCE(:grid_code, grid_code)
WHERE id = :id
"""

CANDIDATES = "m.grid_code = :grid AND m.status IN ('applied', 'recommended', 'examined', " + (
    "'publicised')"
)

# --- AB posts ---------------------------------------------------------------------------------

#: The current stored pairing of a town, with both grids' names and appointed members.
AB_POSTS = """
SELECT a.id, a.grid_code, g.name AS grid, a.cover_grid_code, cg.name AS cover_grid,
       a.link, a.group_no, a.valid_from, a.source,
       m.code AS member_code, m.name AS member_name, m.phone AS member_phone,
       cm.code AS cover_member_code, cm.name AS cover_member_name,
       cm.phone AS cover_member_phone,
       (g.code IS NULL OR cg.code IS NULL) AS stale
FROM ab_posts a
LEFT JOIN grids g ON g.code = a.grid_code AND g.valid_to IS NULL
LEFT JOIN grids cg ON cg.code = a.cover_grid_code AND cg.valid_to IS NULL
LEFT JOIN members m ON m.grid_code = a.grid_code AND m.status = 'appointed'
LEFT JOIN members cm ON cm.grid_code = a.cover_grid_code AND cm.status = 'appointed'
WHERE a.town_code = :town AND a.valid_to IS NULL
  AND (CAST(:village AS text) IS NULL OR left(a.grid_code, 12) = :village)
ORDER BY a.group_no, a.grid_code
"""

#: Close the town's current pairing. clock_timestamp(), not now(): a pairing stored twice in
#: one transaction still gets ``valid_to > valid_from``.
CLOSE_AB_POSTS = """
UPDATE ab_posts SET valid_to = clock_timestamp()
WHERE town_code = :town AND valid_to IS NULL
"""

CLOSE_AB_POST = """
UPDATE ab_posts SET valid_to = clock_timestamp()
WHERE grid_code = :grid AND valid_to IS NULL
RETURNING group_no
"""

INSERT_AB_POST = """
INSERT INTO ab_posts (town_code, grid_code, cover_grid_code, link, group_no, valid_from, source)
VALUES (:town, :grid, :cover, :link, :group_no, clock_timestamp(), :source)
RETURNING id
"""

LOCK_AB_POSTS = "SELECT id FROM ab_posts WHERE town_code = :town AND valid_to IS NULL FOR UPDATE"

AB_POST_GROUP = "SELECT group_no FROM ab_posts WHERE grid_code = :grid AND valid_to IS NULL"

NEXT_AB_GROUP = (
    "SELECT COALESCE(max(group_no), -1) + 1 FROM ab_posts "
    "WHERE town_code = :town AND valid_to IS NULL"
)

#: Whether two current grids share a border (a line, not only a corner).
GRIDS_SHARE_BORDER = """
SELECT ST_Intersects(a.geom, b.geom)
       -- (an empty intersection is "POLYGON EMPTY", of dimension 2: test it first)
       AND ST_Dimension(ST_Intersection(a.geom, b.geom)) >= 1 AS border,
       ST_Distance(a.geom::geography, b.geom::geography) AS gap_m
FROM grids a, grids b
WHERE a.code = :a AND a.valid_to IS NULL AND b.code = :b AND b.valid_to IS NULL
"""

# --- absences ---------------------------------------------------------------------------------

ABSENCES = """
SELECT a.id, m.code AS member_code, a.starts_on, a.ends_on, a.reason, a.created_at, a.actor
FROM absences a JOIN members m ON m.id = a.member_id
WHERE a.member_id = :member_id ORDER BY a.starts_on, a.id
"""

OVERLAPPING_ABSENCE = """
SELECT id, starts_on, ends_on, reason FROM absences
WHERE member_id = :member_id AND daterange(starts_on, ends_on, '[]')
      && daterange(:starts_on, :ends_on, '[]')
ORDER BY starts_on LIMIT 1
"""

INSERT_ABSENCE = """
INSERT INTO absences (member_id, starts_on, ends_on, reason, actor)
VALUES (:member_id, :starts_on, :ends_on, :reason, :actor)
RETURNING id, starts_on, ends_on, reason, created_at, actor
"""

DELETE_ABSENCE = """
DELETE FROM absences a USING members m
WHERE a.id = :id AND m.id = a.member_id
RETURNING a.id, m.code AS member_code, a.starts_on, a.ends_on, a.reason, a.created_at, a.actor
"""

#: Appointed members of a town absent on a day, with the absence that applies.
ABSENT_ON = """
SELECT m.code, m.name, m.grid_code, a.id AS absence_id, a.reason, a.starts_on, a.ends_on
FROM absences a JOIN members m ON m.id = a.member_id
WHERE m.status = 'appointed' AND left(m.grid_code, 9) = :town
  AND :day BETWEEN a.starts_on AND a.ends_on
ORDER BY m.grid_code, m.code
"""

APPOINTED_IN_TOWN = """
SELECT m.code, m.name, m.phone, m.grid_code FROM members m
WHERE m.status = 'appointed' AND left(m.grid_code, 9) = :town
"""

GRID_NAMES = """
SELECT code, name FROM grids WHERE valid_to IS NULL AND left(village_code, 9) = :town
"""
