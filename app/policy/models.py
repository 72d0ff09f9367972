"""The organisation's credit counter per month, against which the owner's monthly allowance is reserved."""
from __future__ import annotations

from app.extensions import db


class OrgBudget(db.Model):
    """Credits booked (used) and held by requests in flight (reserved) in one UTC month. Rows exist only
    for months in which an allowance was set; with an unlimited allowance nothing is counted here."""

    __tablename__ = "org_budget"

    period = db.Column(db.String(7), primary_key=True)  # "YYYY-MM"
    used_micro = db.Column(db.BigInteger, nullable=False, default=0)
    reserved_micro = db.Column(db.BigInteger, nullable=False, default=0)
