"""Incidents (articles 4 and 8): reporting, the seven-step workflow, attachments, supervision.

- :mod:`~gis_grid.incidents.report`: check and place a reported location, assign the grid
  and the responsible member (AB cover when absent), store the incident and its first event.
- :mod:`~gis_grid.incidents.workflow`: :data:`TRANSITIONS`, the one table of allowed steps,
  and :func:`transition_incident`, which checks and records a step under a row lock.
- :mod:`~gis_grid.incidents.attachments`: photos and documents checked by their bytes.
- :mod:`~gis_grid.incidents.supervision`: overdue incidents per grid and member (督办).

Every function takes the caller's connection and runs in its transaction.
"""

from gis_grid.incidents.attachments import (
    ACCEPTED_TYPES,
    MAX_ATTACHMENT_BYTES,
    AttachmentRecord,
    AttachmentTooLargeError,
    UnsupportedContentError,
    add_attachment,
    get_attachment,
    incident_attachments,
    safe_filename,
    sniff_content_type,
)
from gis_grid.incidents.report import (
    Placed,
    Reported,
    Responsible,
    check_lonlat,
    get_incident_detail,
    incident_events,
    place_point,
    report_incident,
    require_incident,
    responsible_member,
)
from gis_grid.incidents.supervision import (
    OverdueGroup,
    OverdueItem,
    OverdueSummary,
    overdue_summary,
)
from gis_grid.incidents.workflow import (
    CHINA_TIME,
    EVALUATION_RANGE,
    NOTE_REQUIRED,
    TRANSITIONS,
    EventRecord,
    allowed_next,
    check_transition,
    record_event,
    transition_incident,
)

__all__ = [
    "ACCEPTED_TYPES",
    "CHINA_TIME",
    "EVALUATION_RANGE",
    "MAX_ATTACHMENT_BYTES",
    "NOTE_REQUIRED",
    "TRANSITIONS",
    "AttachmentRecord",
    "AttachmentTooLargeError",
    "EventRecord",
    "OverdueGroup",
    "OverdueItem",
    "OverdueSummary",
    "Placed",
    "Reported",
    "Responsible",
    "UnsupportedContentError",
    "add_attachment",
    "allowed_next",
    "check_lonlat",
    "check_transition",
    "get_attachment",
    "get_incident_detail",
    "incident_attachments",
    "incident_events",
    "overdue_summary",
    "place_point",
    "record_event",
    "report_incident",
    "require_incident",
    "responsible_member",
    "safe_filename",
    "sniff_content_type",
    "transition_incident",
]
