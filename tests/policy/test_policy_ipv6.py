"""IPv6 clients: the per-IP limit counts a /64 as one client (a host picks any address in its /64), an
IPv4-mapped address counts as its IPv4 address, and allow-list entries that could never match (zone ids,
IPv4-mapped forms) are refused with a message that says what to enter instead."""
from __future__ import annotations

import itertools

import pytest

from app.client_ip import rate_limit_subject

_prefixes = itertools.count(0x100)


def assert_rate_limited(response) -> dict:
    assert response.status_code == 429, response.text
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("rate_limit_error", "rate_limit_exceeded")
    return error


def new_prefix() -> str:
    """A /64 no other test uses: 2001:db8:<n>:<n>::/64."""
    n = next(_prefixes)
    return f"2001:db8:{n:x}:{n:x}"


def test_five_addresses_of_one_64_share_its_per_ip_limit(small_ip_limit_gateway, fresh_window):
    gateway = small_ip_limit_gateway
    key = gateway.create_key()["key"]
    prefix = new_prefix()
    fresh_window(60, 20)
    answers = [gateway.models(key, ip=f"{prefix}:{host:x}::{host:x}") for host in range(1, gateway.per_ip + 1)]
    assert [a.status_code for a in answers] == [200] * gateway.per_ip
    assert [int(a.headers["X-RateLimit-Remaining"]) for a in answers] == list(range(gateway.per_ip - 1, -1, -1))
    refused = gateway.models(key, ip=f"{prefix}:ffff:ffff:ffff:ffff")
    assert "IP address" in assert_rate_limited(refused)["message"]
    assert gateway.models(key, ip=f"{new_prefix()}::1").status_code == 200  # another /64


def test_an_ipv4_mapped_address_counts_as_its_ipv4_address(small_ip_limit_gateway, new_ip, fresh_window):
    gateway = small_ip_limit_gateway
    key = gateway.create_key()["key"]
    ipv4 = new_ip()
    fresh_window(60, 20)
    for n in range(gateway.per_ip):
        assert gateway.models(key, ip=ipv4 if n % 2 else f"::ffff:{ipv4}").status_code == 200
    assert_rate_limited(gateway.models(key, ip=ipv4))


@pytest.mark.parametrize("address,subject", [
    ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
    ("2001:DB8:1:2::", "2001:db8:1:2::/64"),
    ("::1", "::/64"),
    ("::ffff:192.0.2.7", "192.0.2.7"),
    ("192.0.2.7", "192.0.2.7"),
    ("not-an-ip", "not-an-ip"),
])
def test_the_subject_of_the_per_ip_limit(address, subject):
    assert rate_limit_subject(address) == subject


@pytest.mark.parametrize("entry,message", [
    ("fe80::1%eth0", "“fe80::1%eth0” has a zone id (the part from %): it names a network interface, not an "
                     "address, and never matches. Enter the address without it (fe80::1)."),
    ("fe80::%2/64", "“fe80::%2/64” has a zone id (the part from %): it names a network interface, not an "
                    "address, and never matches. Enter the address without it (fe80::/64)."),
    ("::ffff:10.0.0.1", "“::ffff:10.0.0.1” is an IPv4-mapped IPv6 address, which never matches: clients "
                        "with it are checked by their IPv4 address. Enter 10.0.0.1 instead."),
    ("::ffff:10.0.0.0/104", "“::ffff:10.0.0.0/104” is an IPv4-mapped IPv6 address, which never matches: "
                            "clients with it are checked by their IPv4 address. Enter 10.0.0.0/8 instead."),
])
def test_allow_list_entries_that_never_match_are_refused_with_a_clear_message(small_ip_limit_gateway, entry,
                                                                              message):
    gateway = small_ip_limit_gateway
    result = gateway.cli("keys", "create", "--name", "fenced", "--allow-ip", "10.0.0.0/8", "--allow-ip", entry,
                         check=False)
    assert result.returncode != 0
    assert message in result.stderr


@pytest.mark.parametrize("entry,instead", [("::ffff:10.0.0.1", "'10.0.0.1'"), ("fe80::1%eth0", "'fe80::1'")])
def test_trusted_proxies_refuse_the_same_forms_at_start(tmp_path, entry, instead):
    from app.config import ConfigError, load_settings

    with pytest.raises(ConfigError) as refused:
        load_settings(tmp_path, environ={"PFORTE_TRUSTED_PROXIES": f"127.0.0.1, {entry}"})
    assert f"never matches: enter {instead}" in str(refused.value)

