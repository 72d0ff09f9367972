"""Conversations the server keeps: chat threads (`thread_id`) and stored Responses (`previous_response_id`).

Whether a key keeps conversations is the gateway's check (KeyContext.keep_conversations); this module
stores and reads for the key id it is given and never sees another key's rows: a conversation or
response of another key, or one past retention, is "not found" (404), never "forbidden".

Call pattern on the hot path (one indexed read, one write transaction):

    chat, first turn:     tid = new_thread_id()            # before the answer, so a stream can name it
                          ... answer ...
                          start_thread(key.id, messages + [answer], thread_id=tid)
    chat, later turn:     thread = load_thread(key.id, tid)      # read: the row by its unique id
                          upstream gets thread.items + new messages
                          append_turn(thread, new messages + [answer])   # write: one UPDATE
    responses:            chain = load_response(key.id, previous_response_id)   # read: one JOIN
                          upstream gets chain.items + new input
                          store_response(key.id, new_response_id(), input, output, body, after=chain)

Every write commits. Content is sealed (crypto.py) before it reaches the database; sizes are the
plaintext JSON's. Caps: CONVERSATION_MAX_BYTES per conversation (its turns and stored response bodies;
a write that would exceed it is a 400), CONVERSATIONS_PER_KEY conversations per key (a new conversation
beyond it replaces the key's least recently used one, so a client that starts a conversation on every call
never fails), so one key stores at most their product.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import delete, func, insert, select, update

from app.api_errors import ApiError
from app.conversations import crypto
from app.conversations.models import Conversation, StoredResponse
from app.database import utcnow
from app.extensions import db

ID_BYTES = 24  # 192 random bits, hex: the id says nothing about its key, time or order
THREAD_PREFIX = "thread_"
RESPONSE_PREFIX = "resp_"
CONVERSATION_PREFIX = "conv_"  # conversations behind a chain of responses; never shown to clients

_c = Conversation.__table__
_r = StoredResponse.__table__


# ---------------------------------------------------------------------------------------- snapshots


@dataclass(frozen=True)
class Thread:
    """One stored conversation as read: its items and what a later write must check."""

    id: int
    public_id: str
    key_id: int
    kind: str  # thread | responses
    items: tuple
    items_bytes: int  # the items' JSON size
    size_bytes: int  # items and the bodies of the conversation's stored responses
    revision: int


@dataclass(frozen=True)
class ResponseChain:
    """What a response continues: its conversation and where in it the response ends."""

    response_id: str
    thread: Thread
    end: int

    @property
    def items(self) -> tuple:
        """The earlier turns to send upstream ahead of the new input."""
        return self.thread.items[:self.end]


# ------------------------------------------------------------------------------------------------ ids


def new_thread_id() -> str:
    return THREAD_PREFIX + secrets.token_hex(ID_BYTES)


def new_response_id() -> str:
    return RESPONSE_PREFIX + secrets.token_hex(ID_BYTES)


# ------------------------------------------------------------------------------------------- settings


def retention_days() -> int:
    return int(current_app.config["PFORTE_CONVERSATION_RETENTION_DAYS"])


def max_bytes() -> int:
    return int(current_app.config["PFORTE_CONVERSATION_MAX_BYTES"])


def per_key() -> int:
    return int(current_app.config["PFORTE_CONVERSATIONS_PER_KEY"])


def _cutoff(now: datetime | None) -> datetime:
    """Conversations whose last turn is older than this are past retention."""
    return (now or utcnow()) - timedelta(days=retention_days())


def _key() -> str:
    return current_app.config["PFORTE_CONVERSATION_KEY"]


# --------------------------------------------------------------------------------------------- errors


def not_found(what: str, public_id: str, param: str | None) -> ApiError:
    return ApiError(404, "invalid_request_error", "not_found", f"No {what} with id '{public_id[:80]}' found.",
                    param=param, retryable=False)


def _too_large(size: int) -> ApiError:
    return ApiError(400, "invalid_request_error", "conversation_too_large",
                    f"This conversation would hold {size} bytes, more than the {max_bytes()} bytes a stored "
                    f"conversation may hold. Start a new conversation.", retryable=False)


def _busy() -> ApiError:
    return ApiError(409, "invalid_request_error", "conversation_busy",
                    "Another request continued this conversation at the same time. Send the turn again.")


# -------------------------------------------------------------------------------------------- threads


def load_thread(key_id: int, thread_id: str, *, now: datetime | None = None, param: str = "thread_id") -> Thread:
    """A chat thread of this key (one indexed read); 404 for an unknown id, another key's or an expired one."""
    row = db.session.execute(
        select(_c.c.id, _c.c.public_id, _c.c.kind, _c.c.items_encrypted, _c.c.size_bytes, _c.c.revision)
        .where(_c.c.public_id == thread_id, _c.c.key_id == key_id, _c.c.kind == "thread",
               _c.c.updated_at >= _cutoff(now))).first()
    if row is None:
        raise not_found("thread", thread_id, param)
    return _thread(key_id, *row)


def start_thread(key_id: int, items: list, *, thread_id: str | None = None, now: datetime | None = None) -> Thread:
    """Store the first turn(s) of a new chat thread; `thread_id` from new_thread_id() (default: a new one)."""
    thread = _insert(key_id, thread_id or new_thread_id(), "thread", list(items), 0, now)
    db.session.commit()
    return thread


def append_turn(thread: Thread, items: list, *, now: datetime | None = None) -> Thread:
    """Add items to a loaded thread (one UPDATE). 409 if another request wrote it since it was loaded."""
    return _append(thread, list(items), 0, now)


def _thread(key_id: int, conversation_id, public_id, kind, token, size_bytes, revision) -> Thread:
    plaintext = crypto.unseal(token, _key())
    return Thread(id=conversation_id, public_id=public_id, key_id=key_id, kind=kind,
                  items=tuple(crypto.decode(plaintext)), items_bytes=len(plaintext), size_bytes=size_bytes,
                  revision=revision)


def _insert(key_id: int, public_id: str, kind: str, items: list, extra_bytes: int, now) -> Thread:
    now = now or utcnow()
    plaintext = crypto.encode(items)
    size = len(plaintext) + extra_bytes
    if size > max_bytes():
        raise _too_large(size)
    _make_room(key_id, now)
    result = db.session.execute(insert(_c).values(
        public_id=public_id, key_id=key_id, kind=kind, items_encrypted=crypto.seal(plaintext, _key()),
        item_count=len(items), size_bytes=size, revision=1, created_at=now, updated_at=now))
    conversation_id = result.inserted_primary_key[0]
    return Thread(id=conversation_id, public_id=public_id, key_id=key_id, kind=kind, items=tuple(items),
                  items_bytes=len(plaintext), size_bytes=size, revision=1)


def _count_for_key(key_id: int) -> int:
    return db.session.execute(select(func.count()).select_from(_c).where(_c.c.key_id == key_id)).scalar_one()


def _make_room(key_id: int, now: datetime) -> None:
    """Before a key's new conversation: at its cap, drop what is past retention, then its least recently
    used conversations (with their stored responses), so that the new one fits and the cap still holds."""
    excess = _count_for_key(key_id) - per_key() + 1
    if excess <= 0:
        return
    purge_expired(now=now, key_id=key_id, commit=False)
    excess = _count_for_key(key_id) - per_key() + 1
    if excess > 0:
        oldest = select(_c.c.id).where(_c.c.key_id == key_id).order_by(_c.c.updated_at, _c.c.id).limit(excess)
        _delete_where(_c.c.id.in_(db.session.scalars(oldest).all()), commit=False)


def _append(thread: Thread, items: list, extra_bytes: int, now, commit: bool = True) -> Thread:
    new_items = [*thread.items, *items]
    plaintext = crypto.encode(new_items)
    size = thread.size_bytes - thread.items_bytes + len(plaintext) + extra_bytes
    if size > max_bytes():
        raise _too_large(size)
    result = db.session.execute(
        update(_c).where(_c.c.id == thread.id, _c.c.revision == thread.revision)
        .values(items_encrypted=crypto.seal(plaintext, _key()), item_count=len(new_items), size_bytes=size,
                revision=thread.revision + 1, updated_at=now or utcnow()))
    if result.rowcount != 1:
        db.session.rollback()
        raise _busy()
    if commit:
        db.session.commit()
    return Thread(id=thread.id, public_id=thread.public_id, key_id=thread.key_id, kind=thread.kind,
                  items=tuple(new_items), items_bytes=len(plaintext), size_bytes=size,
                  revision=thread.revision + 1)


# ------------------------------------------------------------------------------------------ responses


def load_response(key_id: int, response_id: str, *, now: datetime | None = None,
                  param: str = "previous_response_id") -> ResponseChain:
    """The conversation a stored response belongs to, read with the response in one indexed JOIN."""
    row = db.session.execute(
        select(_r.c.output_end, _c.c.id, _c.c.public_id, _c.c.kind, _c.c.items_encrypted, _c.c.size_bytes,
               _c.c.revision)
        .join(_c, _c.c.id == _r.c.conversation_id)
        .where(_r.c.public_id == response_id, _r.c.key_id == key_id, _c.c.updated_at >= _cutoff(now))).first()
    if row is None:
        raise not_found("response", response_id, param)
    end, *conversation = row
    return ResponseChain(response_id=response_id, thread=_thread(key_id, *conversation), end=end)


def store_response(key_id: int, response_id: str, input_items: list, output_items: list, body: dict, *,
                   after: ResponseChain | None = None, now: datetime | None = None) -> None:
    """Keep a response: its input and output items join the conversation of `after` (the response it
    continues) or start a new one. Continuing the latest response of a conversation is one UPDATE and one
    INSERT in one transaction; continuing an earlier one starts a new conversation from its items."""
    sealed_body = crypto.encode(body)
    items = [*input_items, *output_items]
    if after is None:
        thread = _insert(key_id, CONVERSATION_PREFIX + secrets.token_hex(ID_BYTES), "responses", items,
                         len(sealed_body), now)
        base = 0
    elif after.end == len(after.thread.items):
        base = after.end
        thread = _append(after.thread, items, len(sealed_body), now, commit=False)
    else:
        base = after.end
        thread = _insert(key_id, CONVERSATION_PREFIX + secrets.token_hex(ID_BYTES), "responses",
                         [*after.items, *items], len(sealed_body), now)
    output_start = base + len(input_items)
    db.session.execute(insert(_r).values(
        public_id=response_id, key_id=key_id, conversation_id=thread.id, input_start=base,
        output_start=output_start, output_end=output_start + len(output_items),
        body_encrypted=crypto.seal(sealed_body, _key()), size_bytes=len(sealed_body), created_at=now or utcnow()))
    db.session.commit()


def _stored(key_id: int, response_id: str, now, *columns):
    row = db.session.execute(
        select(*columns).join(_c, _c.c.id == _r.c.conversation_id)
        .where(_r.c.public_id == response_id, _r.c.key_id == key_id, _c.c.updated_at >= _cutoff(now))).first()
    if row is None:
        raise not_found("response", response_id, "response_id")
    return row


def get_response(key_id: int, response_id: str, *, now: datetime | None = None) -> dict:
    """The stored response object (as the gateway stored it)."""
    (token,) = _stored(key_id, response_id, now, _r.c.body_encrypted)
    return crypto.decode(crypto.unseal(token, _key()))


def get_input_items(key_id: int, response_id: str, *, now: datetime | None = None) -> list:
    """The input items the response was made from (its own, not those of the responses it continued)."""
    token, start, stop = _stored(key_id, response_id, now, _c.c.items_encrypted, _r.c.input_start,
                                 _r.c.output_start)
    return crypto.decode(crypto.unseal(token, _key()))[start:stop]


def delete_response(key_id: int, response_id: str, *, now: datetime | None = None) -> None:
    """Delete a stored response. Its items stay only as long as a response that continued it needs them
    as context; a conversation left without responses is deleted."""
    conversation_id, response_pk = _stored(key_id, response_id, now, _r.c.conversation_id, _r.c.id)
    db.session.execute(delete(_r).where(_r.c.id == response_pk))
    remaining = db.session.execute(select(func.max(_r.c.output_end)).where(_r.c.conversation_id == conversation_id)) \
        .scalar_one()
    if remaining is None:
        db.session.execute(delete(_c).where(_c.c.id == conversation_id))
    else:
        token, size = db.session.execute(select(_c.c.items_encrypted, _c.c.size_bytes)
                                         .where(_c.c.id == conversation_id)).one()
        plaintext = crypto.unseal(token, _key())
        items = crypto.decode(plaintext)
        if remaining < len(items):
            kept = crypto.encode(items[:remaining])
            body_bytes = size - len(plaintext)
            db.session.execute(update(_c).where(_c.c.id == conversation_id).values(
                items_encrypted=crypto.seal(kept, _key()), item_count=remaining,
                size_bytes=body_bytes + len(kept), revision=_c.c.revision + 1))
    db.session.commit()


# ---------------------------------------------------------------------------------------------- purge


def purge_expired(*, now: datetime | None = None, key_id: int | None = None, commit: bool = True) -> int:
    """Delete conversations (and their responses) past retention, of every key or one; returns how many."""
    condition = [_c.c.updated_at < _cutoff(now)]
    if key_id is not None:
        condition.append(_c.c.key_id == key_id)
    return _delete_where(*condition, commit=commit)


def purge_key(key_id: int, *, commit: bool = True) -> int:
    """Delete every conversation of a key (e.g. when it is revoked); returns how many."""
    return _delete_where(_c.c.key_id == key_id, commit=commit)


def purge_all() -> int:
    """Delete every stored conversation; returns how many. Commits."""
    return _delete_where()


def _delete_where(*conditions, commit: bool = True) -> int:
    ids = select(_c.c.id).where(*conditions).scalar_subquery()
    db.session.execute(delete(_r).where(_r.c.conversation_id.in_(ids)))
    count = db.session.execute(delete(_c).where(*conditions)).rowcount
    if commit:
        db.session.commit()
    return count


@dataclass(frozen=True)
class KeyUsage:
    conversations: int
    responses: int
    size_bytes: int


def usage_for_key(key_id: int) -> KeyUsage:
    """What a key keeps now (for its detail page)."""
    conversations, size = db.session.execute(
        select(func.count(), func.coalesce(func.sum(_c.c.size_bytes), 0)).where(_c.c.key_id == key_id)).one()
    responses = db.session.execute(select(func.count()).select_from(_r).where(_r.c.key_id == key_id)).scalar_one()
    return KeyUsage(conversations, responses, int(size))
