"""Upstream connections and the models offered to clients."""
from __future__ import annotations

from app.database import utcnow
from app.extensions import db

CONNECTION_KINDS = ("openai", "azure", "anthropic", "demo")
CAPABILITIES = ("chat", "embeddings", "tools", "vision")
RESPONSES_API_KINDS = ("openai", "azure")  # kinds whose upstream may offer the Responses API itself


class Connection(db.Model):
    __tablename__ = "connections"

    id = db.Column(db.Integer, primary_key=True)
    name = db.Column(db.String(100), nullable=False, unique=True)
    kind = db.Column(db.String(16), nullable=False)
    base_url = db.Column(db.String(500), nullable=False, default="")
    credential_encrypted = db.Column(db.Text, nullable=True)  # Fernet token; never shown back
    api_version = db.Column(db.String(32), nullable=True)  # Azure
    connect_timeout = db.Column(db.Float, nullable=False, default=5.0)
    read_timeout = db.Column(db.Float, nullable=False, default=120.0)
    total_timeout = db.Column(db.Float, nullable=False, default=600.0)
    # The upstream offers POST /v1/responses itself (openai and azure kinds): Responses calls go there unchanged
    responses_api = db.Column(db.Boolean, nullable=False, default=False, server_default=db.false())
    # service_tier, store, Anthropic server tools and anthropic-beta go upstream only when this is set
    allow_passthrough = db.Column(db.Boolean, nullable=False, default=False, server_default=db.false())
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    updated_at = db.Column(db.DateTime, nullable=False, default=utcnow, onupdate=utcnow)


class Model(db.Model):
    __tablename__ = "models"

    id = db.Column(db.Integer, primary_key=True)
    public_id = db.Column(db.String(200), nullable=False, unique=True)
    display_name = db.Column(db.String(200), nullable=False)
    connection_id = db.Column(db.Integer, db.ForeignKey("connections.id", ondelete="RESTRICT"),
                              nullable=False)
    upstream_model = db.Column(db.String(200), nullable=False)
    enabled = db.Column(db.Boolean, nullable=False, default=True)
    input_price = db.Column(db.Float, nullable=False, default=0.0)  # credits per million input tokens
    output_price = db.Column(db.Float, nullable=False, default=0.0)  # credits per million output tokens
    capabilities = db.Column(db.String(100), nullable=False, default="chat,embeddings,tools,vision")
    max_output_tokens = db.Column(db.Integer, nullable=False, default=4096)  # default cap for budgeting
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    updated_at = db.Column(db.DateTime, nullable=False, default=utcnow, onupdate=utcnow)

    connection = db.relationship("Connection", lazy="joined")
