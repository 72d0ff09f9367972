"""Assistants: a named agent clients call by its public id as `model`, running on a catalog model with
its own instructions and defaults."""
from __future__ import annotations

from app.database import utcnow
from app.extensions import db


class Assistant(db.Model):
    __tablename__ = "assistants"

    id = db.Column(db.Integer, primary_key=True)
    public_id = db.Column(db.String(200), nullable=False, unique=True)  # what clients send as "model"
    display_name = db.Column(db.String(200), nullable=False)
    model_id = db.Column(db.String(200), nullable=False)  # the catalog model's public id
    instructions = db.Column(db.Text, nullable=False, default="")
    temperature = db.Column(db.Float, nullable=True)  # None = the upstream's default
    max_output_tokens = db.Column(db.Integer, nullable=True)  # None = the model's default
    tools_json = db.Column(db.Text, nullable=True)  # JSON list of tool definitions
    enabled = db.Column(db.Boolean, nullable=False, default=True)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    updated_at = db.Column(db.DateTime, nullable=False, default=utcnow, onupdate=utcnow)
