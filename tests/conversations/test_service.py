"""Stored conversations through the service: threads, stored responses, isolation, caps, purge, encryption."""
from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from app.api_errors import ApiError
from app.conversations import service
from app.database import utcnow
from app.extensions import db
from app.keys import service as keys
from app.server import DAILY_PURGES
from app.usage.retention import purge_request_logs, run_purges

SECRET_WORDS = "the launch code is tangerine-42"


@pytest.fixture
def key_ids(ctx):
    """Two keys' row ids: (mine, other)."""
    mine, _ = keys.create_key("mine", actor="test", keep_conversations=True)
    other, _ = keys.create_key("other", actor="test", keep_conversations=True)
    return mine.id, other.id


def _user(text_: str) -> dict:
    return {"role": "user", "content": text_}


def _assistant(text_: str) -> dict:
    return {"role": "assistant", "content": text_}


def test_ids_are_random_prefixed_and_at_least_128_bits():
    ids = {service.new_thread_id() for _ in range(200)} | {service.new_response_id() for _ in range(200)}
    assert len(ids) == 400
    thread_id, response_id = service.new_thread_id(), service.new_response_id()
    assert thread_id.startswith("thread_") and response_id.startswith("resp_")
    assert len(thread_id.removeprefix("thread_")) * 4 >= 128 and int(thread_id.removeprefix("thread_"), 16) >= 0


def test_a_thread_grows_turn_by_turn(key_ids):
    mine, _ = key_ids
    tid = service.new_thread_id()
    first = service.start_thread(mine, [_user("Hi"), _assistant("Hello!")], thread_id=tid)
    assert first.public_id == tid
    loaded = service.load_thread(mine, tid)
    assert loaded.items == (_user("Hi"), _assistant("Hello!"))
    service.append_turn(loaded, [_user("And now?"), _assistant("Still here.")])
    assert [item["content"] for item in service.load_thread(mine, tid).items] == \
        ["Hi", "Hello!", "And now?", "Still here."]


def test_another_key_gets_not_found_for_threads_and_responses(key_ids):
    mine, other = key_ids
    thread = service.start_thread(mine, [_user("Hi")])
    rid = service.new_response_id()
    service.store_response(mine, rid, [_user("Q")], [_assistant("A")], {"id": rid, "object": "response"})
    for call in (lambda: service.load_thread(other, thread.public_id),
                 lambda: service.load_response(other, rid),
                 lambda: service.get_response(other, rid),
                 lambda: service.get_input_items(other, rid),
                 lambda: service.delete_response(other, rid)):
        with pytest.raises(ApiError) as caught:
            call()
        assert caught.value.status == 404 and caught.value.code == "not_found"
    assert service.get_response(mine, rid)["id"] == rid  # the other key's delete changed nothing


def test_a_response_id_is_not_a_thread_id(key_ids):
    mine, _ = key_ids
    rid = service.new_response_id()
    service.store_response(mine, rid, [_user("Q")], [_assistant("A")], {"id": rid})
    with pytest.raises(ApiError) as caught:
        service.load_thread(mine, rid)
    assert caught.value.status == 404 and caught.value.param == "thread_id"


def test_responses_chain_with_previous_response_id(key_ids):
    mine, _ = key_ids
    first = service.new_response_id()
    service.store_response(mine, first, [_user("1")], [_assistant("one")], {"id": first})
    chain = service.load_response(mine, first)
    assert chain.items == (_user("1"), _assistant("one"))
    second = service.new_response_id()
    service.store_response(mine, second, [_user("2")], [_assistant("two")], {"id": second}, after=chain)
    assert service.load_response(mine, second).items == (_user("1"), _assistant("one"), _user("2"),
                                                         _assistant("two"))
    assert service.get_input_items(mine, second) == [_user("2")]
    assert service.get_response(mine, second) == {"id": second}
    # Continuing the first one again forks: the new response sees only the first turn.
    fork = service.new_response_id()
    service.store_response(mine, fork, [_user("2b")], [_assistant("two b")], {"id": fork},
                           after=service.load_response(mine, first))
    assert [i["content"] for i in service.load_response(mine, fork).items] == ["1", "one", "2b", "two b"]
    assert [i["content"] for i in service.load_response(mine, second).items] == ["1", "one", "2", "two"]


def test_deleting_responses(key_ids):
    mine, _ = key_ids
    first, second = service.new_response_id(), service.new_response_id()
    service.store_response(mine, first, [_user("1")], [_assistant("one")], {"id": first})
    service.store_response(mine, second, [_user("2")], [_assistant("two")], {"id": second},
                           after=service.load_response(mine, first))
    service.delete_response(mine, second)
    with pytest.raises(ApiError):
        service.get_response(mine, second)
    # The first keeps its context, and the deleted turn is gone from storage too.
    assert service.load_response(mine, first).thread.items == (_user("1"), _assistant("one"))
    service.delete_response(mine, first)
    assert db.session.execute(text("SELECT count(*) FROM conversations")).scalar_one() == 0


def test_concurrent_continuations_do_not_lose_a_turn(key_ids):
    mine, _ = key_ids
    thread = service.start_thread(mine, [_user("Hi")])
    a = service.load_thread(mine, thread.public_id)
    b = service.load_thread(mine, thread.public_id)
    service.append_turn(a, [_user("from a")])
    with pytest.raises(ApiError) as caught:
        service.append_turn(b, [_user("from b")])
    assert caught.value.status == 409 and caught.value.code == "conversation_busy"
    assert service.load_thread(mine, thread.public_id).items[-1] == _user("from a")


def test_the_database_holds_no_plaintext(key_ids):
    mine, _ = key_ids
    thread = service.start_thread(mine, [_user(SECRET_WORDS)])
    service.append_turn(service.load_thread(mine, thread.public_id), [_assistant(SECRET_WORDS + " indeed")])
    rid = service.new_response_id()
    service.store_response(mine, rid, [_user(SECRET_WORDS)], [_assistant("noted")],
                           {"id": rid, "output_text": SECRET_WORDS})
    rows = db.session.execute(text("SELECT items_encrypted FROM conversations")).scalars().all()
    rows += db.session.execute(text("SELECT body_encrypted FROM stored_responses")).scalars().all()
    assert len(rows) == 3
    for stored in rows:
        assert "tangerine" not in stored and "launch" not in stored
    assert SECRET_WORDS in service.load_thread(mine, thread.public_id).items[0]["content"]


def test_content_sealed_with_another_instance_key_is_unreadable(app, key_ids):
    from app.config import _new_fernet_key
    from app.conversations.crypto import ContentUnreadable

    mine, _ = key_ids
    thread = service.start_thread(mine, [_user("Hi")])
    app.config["PFORTE_CONVERSATION_KEY"] = _new_fernet_key()
    with pytest.raises(ContentUnreadable):
        service.load_thread(mine, thread.public_id)


def test_the_conversation_key_is_its_own_instance_secret(app):
    assert app.config["PFORTE_CONVERSATION_KEY"] != app.config["PFORTE_ENCRYPTION_KEY"]
    stored = json.loads((Path(app.instance_path) / "secrets.json").read_text())
    assert stored["conversation_key"] == app.config["PFORTE_CONVERSATION_KEY"]


def test_a_conversation_is_capped_in_size(app, key_ids):
    mine, _ = key_ids
    app.config["PFORTE_CONVERSATION_MAX_BYTES"] = 200
    thread = service.start_thread(mine, [_user("x" * 100)])
    with pytest.raises(ApiError) as caught:
        service.append_turn(thread, [_user("y" * 100)])
    assert caught.value.status == 400 and caught.value.code == "conversation_too_large"
    assert "200 bytes" in caught.value.message
    with pytest.raises(ApiError):
        service.start_thread(mine, [_user("z" * 300)])
    assert service.load_thread(mine, thread.public_id).items == (_user("x" * 100),)  # unchanged
    # A response's body counts too.
    with pytest.raises(ApiError):
        service.store_response(mine, service.new_response_id(), [_user("q")], [], {"text": "b" * 300})


def test_at_its_cap_a_key_replaces_its_least_recently_used_conversation(app, key_ids):
    mine, other = key_ids
    app.config["PFORTE_CONVERSATIONS_PER_KEY"] = 2
    start = utcnow() - timedelta(hours=3)
    service.start_thread(other, [_user("other key is not affected")], now=start)
    first = service.start_thread(mine, [_user("1")], now=start)
    rid = service.new_response_id()
    service.store_response(mine, rid, [_user("2")], [], {"id": rid}, now=start + timedelta(hours=1))
    # The first thread was used last: the stored response's conversation is the least recently used one.
    service.append_turn(first, [_user("1 again")], now=start + timedelta(hours=2))
    third = service.start_thread(mine, [_user("3")])
    assert service.usage_for_key(mine).conversations == 2
    assert service.load_thread(mine, first.public_id).items == (_user("1"), _user("1 again"))
    assert service.load_thread(mine, third.public_id).items == (_user("3"),)
    with pytest.raises(ApiError) as caught:
        service.get_response(mine, rid)
    assert caught.value.status == 404
    assert service.usage_for_key(mine).responses == 0
    assert service.usage_for_key(other).conversations == 1
    # A client starting a conversation on every call keeps working, and the cap keeps holding.
    for turn in range(5):
        service.start_thread(mine, [_user(f"stateless {turn}")])
    assert service.usage_for_key(mine).conversations == 2


def test_the_cap_counts_only_conversations_within_retention(app, key_ids):
    mine, _ = key_ids
    app.config["PFORTE_CONVERSATIONS_PER_KEY"] = 1
    old = utcnow() - timedelta(days=40)
    service.start_thread(mine, [_user("old")], now=old)
    service.start_thread(mine, [_user("new")])  # the expired one makes room
    assert db.session.execute(text("SELECT count(*) FROM conversations")).scalar_one() == 1


def test_retention_hides_then_purge_deletes(key_ids):
    mine, other = key_ids
    start = utcnow()
    thread = service.start_thread(mine, [_user("Hi")], now=start)
    rid = service.new_response_id()
    service.store_response(other, rid, [_user("Q")], [], {"id": rid}, now=start)
    day29, day31 = start + timedelta(days=29), start + timedelta(days=31)
    assert service.load_thread(mine, thread.public_id, now=day29).items == (_user("Hi"),)
    service.append_turn(service.load_thread(mine, thread.public_id, now=day29), [_user("later")], now=day29)
    # Retention counts from the last turn: the thread lives on, the untouched response does not.
    assert len(service.load_thread(mine, thread.public_id, now=day31).items) == 2
    with pytest.raises(ApiError):
        service.get_response(other, rid, now=day31)
    assert service.purge_expired(now=day31) == 1
    assert db.session.execute(text("SELECT count(*) FROM stored_responses")).scalar_one() == 0
    assert service.purge_expired(now=day29 + timedelta(days=31)) == 1
    assert db.session.execute(text("SELECT count(*) FROM conversations")).scalar_one() == 0


def test_purge_by_key_and_all(key_ids):
    mine, other = key_ids
    service.start_thread(mine, [_user("a")])
    service.store_response(mine, service.new_response_id(), [_user("b")], [], {})
    service.start_thread(other, [_user("c")])
    assert service.purge_key(mine) == 2
    assert service.usage_for_key(mine).conversations == 0 and service.usage_for_key(mine).responses == 0
    assert service.usage_for_key(other).conversations == 1
    assert service.purge_all() == 1


def test_revoking_a_key_deletes_its_conversations(key_ids):
    mine, other = key_ids
    thread = service.start_thread(mine, [_user("a")])
    rid = service.new_response_id()
    service.store_response(mine, rid, [_user("b")], [], {})
    service.start_thread(other, [_user("c")])
    public_id = db.session.execute(text("SELECT public_id FROM api_keys WHERE id = :id"), {"id": mine}).scalar_one()
    keys.revoke_key(public_id, actor="test")
    assert service.usage_for_key(mine) == service.KeyUsage(0, 0, 0)
    with pytest.raises(ApiError):
        service.load_thread(mine, thread.public_id)
    assert service.usage_for_key(other).conversations == 1


def test_the_daily_purge_of_pforte_serve_deletes_expired_conversations(app, key_ids):
    mine, _ = key_ids
    old = service.start_thread(mine, [_user("old")], now=utcnow() - timedelta(days=31))
    recent = service.start_thread(mine, [_user("recent")])
    removed = run_purges(app, (("request-log rows", purge_request_logs), *DAILY_PURGES))
    assert removed == {"request-log rows": 0, "conversations": 1}
    with pytest.raises(ApiError):  # read as of a month ago, when it was within retention: the row is gone
        service.load_thread(mine, old.public_id, now=utcnow() - timedelta(days=30))
    assert service.load_thread(mine, recent.public_id).items == (_user("recent"),)
