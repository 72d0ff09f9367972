"""Request-log retention: the owner's setting, and the purge of older rows (monthly totals stay)."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

import gevent
from flask_babel import lazy_gettext as _l
from sqlalchemy import delete, select

from app.audit import service as audit
from app.database import utcnow
from app.extensions import db
from app.settings import service as settings
from app.usage.filters import UsageInputError
from app.usage.models import RequestLog

log = logging.getLogger(__name__)

DEFAULT_RETENTION_DAYS = 90
MIN_RETENTION_DAYS = 1
MAX_RETENTION_DAYS = 3650
RETENTION_SETTING = "retention_days"
PURGE_BATCH = 5000


def retention_days() -> int:
    """How many days request-log rows are kept (the owner's setting, default 90)."""
    value = settings.get_setting(RETENTION_SETTING, DEFAULT_RETENTION_DAYS)
    try:
        days = int(value)
    except (TypeError, ValueError):
        return DEFAULT_RETENTION_DAYS
    return min(max(days, MIN_RETENTION_DAYS), MAX_RETENTION_DAYS)


def set_retention_days(raw, actor: str | None = None) -> int:
    """Store the retention period (whole days, 1–3650) with an audit event. UsageInputError on bad input."""
    try:
        days = int(str(raw).strip())
    except (TypeError, ValueError):
        raise UsageInputError(str(_l("Enter the number of days as a whole number."))) from None
    if not MIN_RETENTION_DAYS <= days <= MAX_RETENTION_DAYS:
        raise UsageInputError(str(_l("Enter between %(low)d and %(high)d days.",
                                     low=MIN_RETENTION_DAYS, high=MAX_RETENTION_DAYS)))
    before = retention_days()
    settings.set_setting(RETENTION_SETTING, days)
    audit.record("usage.retention", target_type="setting", target_id=RETENTION_SETTING,
                 before={"retention_days": before}, after={"retention_days": days}, actor=actor)
    db.session.commit()
    return days


def purge_request_logs(days: int | None = None, now: datetime | None = None) -> int:
    """Delete request-log rows older than the retention period; returns how many. Monthly totals stay.

    Deletes in batches, each its own short transaction, so that the gateway's settle writes are never
    blocked for long."""
    days = retention_days() if days is None else days
    if days < MIN_RETENTION_DAYS:
        raise UsageInputError(str(_l("Keep request logs for at least one day.")))
    cutoff = (now or utcnow()) - timedelta(days=days)
    removed = 0
    while True:
        batch = select(RequestLog.id).where(RequestLog.created_at < cutoff).limit(PURGE_BATCH)
        ids = db.session.scalars(batch).all()
        if not ids:
            break
        db.session.execute(delete(RequestLog).where(RequestLog.id.in_(ids)))
        db.session.commit()
        removed += len(ids)
    return removed


def start_daily_purge(app, interval_seconds: float = 86400.0, also: tuple = ()):
    """Spawn the greenlet `pforte serve` runs: purge shortly after start, then once a day. Returns it.

    Each pass purges the request log and then every (name, purge) pair in `also` (other domains' data past
    their retention, e.g. stored conversations). PFORTE_PURGE_DELAY_SECONDS (default 60) sets the wait
    before the first purge."""
    first_delay = float(app.config.get("PFORTE_PURGE_DELAY_SECONDS", 60) or 0)
    purges = (("request-log rows", purge_request_logs), *also)

    def run_forever():
        gevent.sleep(first_delay)
        while True:
            run_purges(app, purges)
            gevent.sleep(interval_seconds)

    return gevent.spawn(run_forever)


def run_purges(app, purges) -> dict[str, int]:
    """One pass of the daily purge: each (name, purge) in its own app context; one failing does not keep
    the others from running (the next day tries again). Returns what each removed."""
    removed = {}
    for name, purge in purges:
        try:
            with app.app_context():
                removed[name] = purge()
            log.info("retention purge removed %d %s", removed[name], name)
        except Exception:
            log.exception("retention purge of %s failed", name)
    return removed
