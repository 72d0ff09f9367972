"""Key format, checksum and hashing (pure functions, no database)."""
import re

import pytest

from app.keys import secrets

BASE62 = re.compile(r"[0-9A-Za-z]+")


def test_generated_key_has_prefix_random_part_and_valid_checksum():
    raw = secrets.generate_key("sk-pf-")
    assert raw.startswith("sk-pf-")
    body = raw[len("sk-pf-"):]
    assert len(body) == 38 and BASE62.fullmatch(body)
    assert secrets.is_well_formed(raw)


def test_keys_are_unique_and_random():
    keys = {secrets.generate_key("sk-pf-")[6:38] for _ in range(2000)}
    assert len(keys) == 2000
    # Every base62 character turns up somewhere in 64,000 random characters.
    assert set("".join(keys)) == set(secrets.ALPHABET)


def test_any_single_character_change_breaks_the_checksum():
    raw = secrets.generate_key("sk-pf-")
    for position in range(6, len(raw)):
        for replacement in "0aZ":
            if raw[position] == replacement:
                continue
            changed = raw[:position] + replacement + raw[position + 1:]
            assert not secrets.is_well_formed(changed), (position, replacement)


@pytest.mark.parametrize("candidate", [
    "", "sk-pf-", "sk-pf-short", "Bearer sk-pf-x", None, 12345,
    "sk-pf-" + "a" * 38,  # right shape, wrong checksum
    "sk pf " + "a" * 38,  # spaces in the prefix
    "x" * 17 + "A" * 38,  # prefix longer than 16 characters
    "sk-pf-" + "é" * 38,
])
def test_malformed_keys_are_recognised(candidate):
    assert not secrets.is_well_formed(candidate)


def test_key_with_another_prefix_is_still_well_formed():
    """Keys issued before PFORTE_KEY_PREFIX changed keep working."""
    assert secrets.is_well_formed(secrets.generate_key("acme_"))
    assert secrets.is_well_formed(secrets.generate_key(""))


def test_prefix_is_validated():
    with pytest.raises(ValueError):
        secrets.generate_key("has space")
    with pytest.raises(ValueError):
        secrets.generate_key("p" * 17)


def test_hash_is_hmac_sha256_of_the_whole_key_under_the_pepper():
    import hashlib
    import hmac

    raw = secrets.generate_key("sk-pf-")
    digest = secrets.hash_key(b"pepper-1", raw)
    assert digest == hmac.new(b"pepper-1", raw.encode(), hashlib.sha256).hexdigest()
    assert len(digest) == 64
    assert secrets.hash_key(b"pepper-2", raw) != digest
    assert raw not in digest


def test_display_prefix_shows_prefix_and_eight_characters():
    raw = secrets.generate_key("sk-pf-")
    assert secrets.display_prefix(raw) == raw[:14]


def test_public_ids_are_distinct_and_not_the_secret():
    ids = {secrets.new_public_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(i.startswith("key_") and len(i) == 20 for i in ids)
