"""The key lifecycle service: validation, changes with audit events, listing with filters and pages."""
import json
from datetime import timedelta

import pytest

from app.database import utcnow


@pytest.fixture
def keys(ctx):
    from app.keys import service

    return service


def _events(audit_log, action):
    return [{**e, "before": json.loads(e["before"] or "null"), "after": json.loads(e["after"] or "null")}
            for e in audit_log(action)]


def test_create_stores_only_the_hash_and_records_an_event(keys, audit_log):
    key, plaintext = keys.create_key("  DMS  ", actor="anna")
    assert key.name == "DMS" and key.status == "active" and key.scope == "full"
    assert key.prefix == plaintext[:14] and plaintext not in key.secret_hash
    assert len(key.secret_hash) == 64
    [event] = _events(audit_log, "key.create")
    assert event["actor_name"] == "anna" and event["target_id"] == key.public_id and event["before"] is None
    assert event["after"]["name"] == "DMS" and event["after"]["status"] == "active"
    text = json.dumps(event, default=str)
    assert plaintext not in text and key.secret_hash not in text


@pytest.mark.parametrize("name, message", [
    ("", "Enter a name"), ("   ", "Enter a name"), ("x" * 101, "at most 100"),
])
def test_name_is_required_and_at_most_100_characters(keys, name, message):
    with pytest.raises(keys.KeyInputError) as caught:
        keys.create_key(name)
    assert message in caught.value.errors["name"]


def test_name_of_exactly_100_characters_is_fine(keys):
    key, _ = keys.create_key("x" * 100)
    assert len(key.name) == 100


def test_expiry_must_lie_in_the_future(keys):
    with pytest.raises(keys.KeyInputError) as caught:
        keys.create_key("k", expires_at=utcnow() - timedelta(seconds=1))
    assert "future" in caught.value.errors["expires_at"]
    key, _ = keys.create_key("k", expires_at=utcnow() + timedelta(minutes=1))
    assert key.expires_at is not None


def test_all_problems_are_reported_at_once(keys):
    with pytest.raises(keys.KeyInputError) as caught:
        keys.create_key("", expires_at=utcnow() - timedelta(days=1), scope="root",
                        allowed_cidrs=["10.0.0.300"], quota_micro=-1, rpm=0, max_concurrent=-5)
    assert set(caught.value.errors) == {"name", "expires_at", "scope", "allowed_cidrs", "quota_micro", "rpm",
                                        "max_concurrent"}


def test_networks_are_normalised_and_deduplicated(keys):
    key, _ = keys.create_key("k", allowed_cidrs=["10.1.2.3/8", "10.0.0.0/8", "2001:DB8::/32", "192.0.2.7"])
    assert key.allowed_cidrs == "10.0.0.0/8,2001:db8::/32,192.0.2.7/32"


def test_quota_zero_is_a_key_without_credits_and_none_is_unlimited(keys):
    zero, _ = keys.create_key("zero", quota_micro=0)
    unlimited, _ = keys.create_key("unlimited")
    assert zero.quota_micro == 0 and unlimited.quota_micro is None


def test_rename_records_key_rename_with_before_and_after(keys, audit_log):
    key, _ = keys.create_key("old")
    keys.rename_key(key.public_id, " new ", actor="anna")
    [event] = _events(audit_log, "key.rename")
    assert event["before"] == {"name": "old"} and event["after"] == {"name": "new"}


def test_policy_change_records_key_update_with_only_the_changed_fields(keys, audit_log):
    key, _ = keys.create_key("k", rpm=10)
    changes = {"name": "k", "rpm": 20, "allowed_models": ["m1"], "quota_micro": 5_000_000}
    keys.update_key(key.public_id, changes, actor="anna")
    [event] = _events(audit_log, "key.update")
    assert event["before"] == {"rpm": 10, "allowed_models": [], "quota_micro": None}
    assert event["after"] == {"rpm": 20, "allowed_models": ["m1"], "quota_micro": 5_000_000}


def test_saving_without_changes_records_nothing(keys, audit_log):
    key, _ = keys.create_key("k", rpm=10, allowed_cidrs=["10.0.0.0/8"])
    keys.update_key(key.public_id, {"name": "k", "rpm": 10, "allowed_cidrs": ["10.0.0.0/8"]})
    assert audit_log("key.update") == [] and audit_log("key.rename") == []


def test_monthly_quota_starts_in_the_current_period(keys):
    key, _ = keys.create_key("k", quota_micro=1_000_000, quota_monthly=True)
    assert key.quota_period == utcnow().strftime("%Y-%m")


def test_disable_enable_revoke_each_record_an_event(keys, audit_log):
    key, _ = keys.create_key("k")
    keys.disable_key(key.public_id, actor="anna")
    keys.enable_key(key.public_id, actor="anna")
    keys.revoke_key(key.public_id, actor="anna")
    assert [e["action"] for e in audit_log() if e["action"].startswith("key.")] == [
        "key.create", "key.disable", "key.enable", "key.revoke"]
    [revoke] = _events(audit_log, "key.revoke")
    assert revoke["before"] == {"status": "active"} and revoke["after"]["status"] == "revoked"
    assert revoke["after"]["revoked_at"]


def test_revoking_is_one_way(keys):
    key, _ = keys.create_key("k")
    keys.revoke_key(key.public_id)
    revoked_at = keys.get_key(key.public_id).revoked_at
    for change in (keys.enable_key, keys.disable_key):
        with pytest.raises(keys.KeyInputError):
            change(key.public_id)
    with pytest.raises(keys.KeyInputError):
        keys.rename_key(key.public_id, "again")
    keys.revoke_key(key.public_id)  # revoking twice is harmless and keeps the first time
    again = keys.get_key(key.public_id)
    assert again.status == "revoked" and again.revoked_at == revoked_at


def test_unknown_public_id(keys):
    with pytest.raises(keys.KeyNotFound):
        keys.revoke_key("key_doesnotexist")


def test_display_status_and_filters(keys):
    now = utcnow()
    active, _ = keys.create_key("active one")
    disabled, _ = keys.create_key("disabled one")
    keys.disable_key(disabled.public_id)
    revoked, _ = keys.create_key("revoked one")
    keys.revoke_key(revoked.public_id)
    expired, _ = keys.create_key("expired one", expires_at=now + timedelta(seconds=30))
    from app.extensions import db

    expired.expires_at = now - timedelta(seconds=1)  # time has passed
    db.session.commit()
    names = {status: [k.name for k in keys.list_keys(status).items] for status in keys.LIST_FILTERS}
    assert names["active"] == ["active one"]
    assert names["disabled"] == ["disabled one"]
    assert names["revoked"] == ["revoked one"]
    assert names["expired"] == ["expired one"]
    assert sorted(names["all"]) == sorted(["active one", "disabled one", "revoked one", "expired one"])
    assert [keys.display_status(k) for k in (active, disabled, revoked, expired)] == [
        "active", "disabled", "revoked", "expired"]


def test_search_by_name_or_prefix_case_insensitively(keys):
    dms, _ = keys.create_key("DMS Translation")
    keys.create_key("Portal")
    keys.create_key("100% sure_thing")
    assert [k.name for k in keys.list_keys(search="translation").items] == ["DMS Translation"]
    assert [k.name for k in keys.list_keys(search=dms.prefix).items] == ["DMS Translation"]
    assert [k.name for k in keys.list_keys(search=dms.prefix[6:12]).items] == ["DMS Translation"]
    # LIKE wildcards in the search text are taken literally.
    assert [k.name for k in keys.list_keys(search="0% s").items] == ["100% sure_thing"]
    assert keys.list_keys(search="_").total == 1
    assert keys.list_keys(search="nothing like it").items == []


def test_pages_hold_newest_first_and_never_overlap(keys):
    from app.extensions import db

    created = []
    for i in range(60):
        key, _ = keys.create_key(f"key {i:02d}")
        key.created_at = utcnow() - timedelta(minutes=60 - i)  # distinct, increasing creation times
        created.append(key.name)
    db.session.commit()
    pages = [keys.list_keys(page=n, per_page=25) for n in (1, 2, 3)]
    assert [p.total for p in pages] == [60, 60, 60] and pages[0].pages == 3
    seen = [k.name for p in pages for k in p.items]
    assert seen == list(reversed(created))
    assert (pages[0].has_previous, pages[0].has_next, pages[2].has_next) == (False, True, False)
    # Out-of-range page numbers land on the nearest page.
    assert keys.list_keys(page=99, per_page=25).page == 3 and keys.list_keys(page=-4).page == 1


def test_iter_keys_reads_everything_in_batches(keys):
    for i in range(7):
        keys.create_key(f"k{i}")
    assert [k.name for k in keys.iter_keys(batch=3)] == [f"k{i}" for i in range(7)]
