"""Conversations the server keeps for keys that have "keep conversations" on.

A conversation holds every turn of one thread (a chat `thread_id`, or a chain of Responses linked by
`previous_response_id`) as one encrypted JSON list, so continuing it reads and writes one row. A stored
response points into its conversation's list. Content is never stored in plaintext.
"""
from __future__ import annotations

from app.database import utcnow
from app.extensions import db

KINDS = ("thread", "responses")


class Conversation(db.Model):
    __tablename__ = "conversations"

    id = db.Column(db.Integer, primary_key=True)
    public_id = db.Column(db.String(64), nullable=False, unique=True)  # thread_… or an internal conv_…
    key_id = db.Column(db.Integer, db.ForeignKey("api_keys.id", ondelete="CASCADE"), nullable=False, index=True)
    kind = db.Column(db.String(16), nullable=False)
    items_encrypted = db.Column(db.Text, nullable=False)  # Fernet token of the JSON list of items
    item_count = db.Column(db.Integer, nullable=False, default=0)
    size_bytes = db.Column(db.Integer, nullable=False, default=0)  # plaintext JSON size, for the caps
    revision = db.Column(db.Integer, nullable=False, default=0)  # bumped by every write (lost-update check)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    updated_at = db.Column(db.DateTime, nullable=False, default=utcnow, index=True)  # retention counts from here


class StoredResponse(db.Model):
    """A `store: true` response: its items are conversation items [input_start, end)."""

    __tablename__ = "stored_responses"

    id = db.Column(db.Integer, primary_key=True)
    public_id = db.Column(db.String(64), nullable=False, unique=True)  # resp_…
    key_id = db.Column(db.Integer, db.ForeignKey("api_keys.id", ondelete="CASCADE"), nullable=False, index=True)
    conversation_id = db.Column(db.Integer, db.ForeignKey("conversations.id", ondelete="CASCADE"),
                                nullable=False, index=True)
    input_start = db.Column(db.Integer, nullable=False)  # first input item of this response
    output_start = db.Column(db.Integer, nullable=False)  # first output item
    output_end = db.Column(db.Integer, nullable=False)  # one past the last output item
    body_encrypted = db.Column(db.Text, nullable=False)  # Fernet token of the response object
    size_bytes = db.Column(db.Integer, nullable=False, default=0)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
