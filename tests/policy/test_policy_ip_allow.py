"""IP allow lists: IPv4 and IPv6 addresses and ranges, parsed once per list, never echoed back."""
import pytest

from app.client_ip import resolve_client_ip
from app.policy import ip_allow
from app.policy.service import PolicyDenied, check_ip, normalise_ip_list


def test_empty_list_allows_every_address():
    assert ip_allow.allowed("203.0.113.9", ())
    assert ip_allow.allowed("2001:db8::1", ())


@pytest.mark.parametrize("address,expected", [
    ("10.1.2.3", True), ("10.255.255.255", True), ("11.0.0.0", False),
    ("192.0.2.7", True), ("192.0.2.8", False),
    ("2001:db8:abcd:12::1", True), ("2001:db8:abcd:13::1", False), ("2001:db9::1", False),
    ("::1", True), ("::2", False),
])
def test_addresses_and_ranges_of_both_families(address, expected):
    cidrs = ("10.0.0.0/8", "192.0.2.7", "2001:db8:abcd:12::/64", "::1")
    assert ip_allow.allowed(address, cidrs) is expected


def test_range_boundaries():
    cidrs = ("192.168.4.0/22",)
    assert ip_allow.allowed("192.168.4.0", cidrs)
    assert ip_allow.allowed("192.168.7.255", cidrs)
    assert not ip_allow.allowed("192.168.3.255", cidrs)
    assert not ip_allow.allowed("192.168.8.0", cidrs)
    v6 = ("2001:db8::/127",)
    assert ip_allow.allowed("2001:db8::", v6)
    assert ip_allow.allowed("2001:db8::1", v6)
    assert not ip_allow.allowed("2001:db8::2", v6)


def test_ipv4_mapped_ipv6_address_matches_the_ipv4_range():
    assert ip_allow.allowed("::ffff:10.0.0.5", ("10.0.0.0/24",))
    assert not ip_allow.allowed("::ffff:10.0.1.5", ("10.0.0.0/24",))


def test_an_ipv4_range_never_matches_an_ipv6_address_and_back():
    assert not ip_allow.allowed("2001:db8::1", ("0.0.0.0/0",))
    assert not ip_allow.allowed("10.0.0.1", ("::/0",))


def test_unparsable_client_address_is_refused():
    assert not ip_allow.allowed("", ("10.0.0.0/8",))
    assert not ip_allow.allowed("not-an-ip", ("10.0.0.0/8",))


def test_invalid_stored_entries_match_nothing_so_the_list_fails_closed():
    assert not ip_allow.allowed("10.0.0.1", ("nonsense",))
    assert ip_allow.allowed("10.0.0.1", ("nonsense", "10.0.0.0/8"))


def test_a_list_is_parsed_once_not_per_request():
    cidrs = ("198.51.100.0/24", "2001:db8:1::/48")
    ip_allow.allowed("198.51.100.1", cidrs)
    before = ip_allow._networks.cache_info()
    for last in range(2, 50):
        ip_allow.allowed(f"198.51.100.{last}", cidrs)
    after = ip_allow._networks.cache_info()
    assert after.misses == before.misses
    assert after.hits == before.hits + 48


def test_normalise_validates_and_canonicalises():
    assert normalise_ip_list("10.1.2.3/8, 192.0.2.7/32;2001:DB8::/32\n::1 10.0.0.0/8") == [
        "10.0.0.0/8", "192.0.2.7", "2001:db8::/32", "::1"]
    assert normalise_ip_list(["", " 203.0.113.0/24 "]) == ["203.0.113.0/24"]
    assert normalise_ip_list("") == []


@pytest.mark.parametrize("bad", ["10.0.0.256", "10.0.0.0/33", "2001:db8::/129", "example.org", "fe80::1%eth0",
                                 "10.0.0.0/8/8"])
def test_normalise_names_the_bad_entry(bad):
    with pytest.raises(ValueError) as error:
        normalise_ip_list(f"10.0.0.0/8, {bad}")
    assert error.value.entry == bad


def test_check_ip_refuses_without_revealing_the_list(make_key):
    key = make_key(allowed_cidrs=("10.20.0.0/16", "2001:db8:77::/48"))
    check_ip(key, "10.20.1.1")
    check_ip(key, "2001:db8:77:1::5")
    with pytest.raises(PolicyDenied) as refused:
        check_ip(key, "10.21.0.1")
    denied = refused.value
    assert (denied.status, denied.error_type, denied.code) == (403, "permission_error", "ip_not_allowed")
    assert "10.20" not in denied.message and "2001" not in denied.message and "/" not in denied.message


def test_spoofed_forwarded_for_without_a_trusted_proxy_changes_nothing(make_key):
    key = make_key(allowed_cidrs=("10.0.0.0/8",))
    # The peer is not a trusted proxy: X-Forwarded-For is ignored and the socket address is checked.
    client = resolve_client_ip("203.0.113.5", "10.0.0.1", "")
    assert client == "203.0.113.5"
    with pytest.raises(PolicyDenied):
        check_ip(key, client)
    client = resolve_client_ip("203.0.113.5", "10.0.0.1", "192.0.2.0/24")
    with pytest.raises(PolicyDenied):
        check_ip(key, client)


def test_forwarded_for_through_a_trusted_proxy_is_walked_from_the_right(make_key):
    key = make_key(allowed_cidrs=("2001:db8:aa::/48",))
    # A client may prepend anything; the right-most untrusted hop is the one the proxy saw.
    client = resolve_client_ip("192.0.2.1", "2001:db8:aa::9, 2001:db8:ff::1", "192.0.2.0/24")
    assert client == "2001:db8:ff::1"
    with pytest.raises(PolicyDenied):
        check_ip(key, client)
    client = resolve_client_ip("192.0.2.1", "2001:db8:ff::1, 2001:db8:aa::9", "192.0.2.0/24")
    check_ip(key, client)
