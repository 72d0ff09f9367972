"""Upstream proxies and CA bundles (app/providers/transport.py, proxy.py): a gateway started with HTTPS_PROXY,
HTTP_PROXY, NO_PROXY and PFORTE_UPSTREAM_CA_BUNDLE reaches a TLS fake upstream with a self-signed
certificate through a CONNECT tunnel, a plain one with absolute-URI requests, and NO_PROXY hosts directly;
a certificate outside the bundle is refused (503)."""
from __future__ import annotations

import datetime
import ipaddress
import json
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import openai
import pytest
import requests
from api_helpers import user, wait_for
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from support.database import fresh_database_url
from support.processes import ROOT, LiveServer, free_port
from upstream_variants import FakeUpstreamWith


def self_signed(folder: Path, name: str) -> tuple[Path, Path]:
    """A self-signed certificate for localhost and 127.0.0.1 (it is its own CA)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"pforte test {name}")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / f"{name}.crt", folder / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


class TLSUpstream(FakeUpstreamWith):
    def __init__(self, port: int, cert: Path, key: Path):
        super().__init__(port, "--tls-cert", str(cert), "--tls-key", str(key))
        self.url = f"https://127.0.0.1:{port}"
        self.cert = cert

    def start(self) -> None:
        self.process = subprocess.Popen([sys.executable, str(ROOT / "tests" / "fake_upstream.py"), "--port",
                                         str(self.port), *self.options],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def up():
            assert self.process.poll() is None, "the TLS fake upstream exited"
            try:
                return requests.get(f"{self.url}/health", timeout=1, verify=str(self.cert)).ok
            except requests.RequestException:
                return False

        wait_for(up, timeout=30)

    def stats(self) -> dict:
        return requests.get(f"{self.url}/stats", timeout=5, verify=str(self.cert)).json()


class Proxy:
    def __init__(self, folder: Path):
        self.port = free_port()
        self.log = folder / "proxy.log"
        self.log.write_text("")
        self.process = subprocess.Popen([sys.executable, str(ROOT / "tests" / "support" / "connect_proxy.py"),
                                         "--port", str(self.port), "--log", str(self.log)])
        wait_for(lambda: self._listening(), timeout=30)

    def _listening(self) -> bool:
        assert self.process.poll() is None, "the proxy exited"
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
        except OSError:
            return False
        return True

    def lines(self) -> list[str]:
        return self.log.read_text().splitlines()

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


@dataclass
class ProxiedGateway:
    server: LiveServer
    key: str
    proxy: Proxy
    trusted: TLSUpstream
    untrusted: TLSUpstream

    def client(self) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.server.url}/v1", api_key=self.key, max_retries=0)


@pytest.fixture(scope="module")
def proxied(gateway, tmp_path_factory):
    folder = tmp_path_factory.mktemp("proxied")
    trusted_cert, trusted_key = self_signed(folder, "trusted")
    other_cert, other_key = self_signed(folder, "untrusted")
    trusted = TLSUpstream(free_port(), trusted_cert, trusted_key)
    untrusted = TLSUpstream(free_port(), other_cert, other_key)
    started = []
    try:
        for upstream in (trusted, untrusted):
            upstream.start()
            started.append(upstream)
        proxy = Proxy(folder)
        started.append(proxy)
        instance = folder / "instance"
        instance.mkdir()
        with fresh_database_url(instance, keep=True) as url:
            database_url = url
        proxy_url = f"http://127.0.0.1:{proxy.port}"
        env = {"PFORTE_DATABASE_URL": database_url, "PFORTE_RATELIMIT_PER_IP": "100000/minute",
               "PFORTE_UPSTREAM_CA_BUNDLE": str(trusted_cert),
               "HTTPS_PROXY": proxy_url, "HTTP_PROXY": proxy_url, "NO_PROXY": "localhost"}
        server = LiveServer(instance, free_port(), env)
        started.append(server)
        server.start()
        cli = server.setup_cli
        plain_port = gateway.upstream.port
        for name, base in (("tls-test", f"{trusted.url}/v1"), ("tls-direct", f"https://localhost:{trusted.port}/v1"),
                           ("plain-test", f"http://127.0.0.1:{plain_port}/v1"),
                           ("plain-direct", f"http://localhost:{plain_port}/v1"),
                           ("untrusted-test", f"{untrusted.url}/v1")):
            cli("connections", "add", "--name", name, "--kind", "openai", "--base-url", base)
            cli("models", "add", "--id", name, "--connection", name, "--upstream-model", "gpt-fake")
        key = json.loads(cli("keys", "create", "--name", "proxied", "--json").stdout)["key"]
        yield ProxiedGateway(server, key, proxy, trusted, untrusted)
    finally:
        for item in reversed(started):
            item.stop()


def test_https_upstream_through_a_connect_tunnel_with_the_ca_bundle(proxied):
    client = proxied.client()
    before = proxied.trusted.stats()["by_path"].get("/v1/chat/completions", 0)
    completion = client.chat.completions.create(model="tls-test", messages=user("hi"))
    assert completion.choices[0].message.content.startswith("This is the fake upstream")
    text = "".join(c.choices[0].delta.content or "" for c in client.chat.completions.create(
        model="tls-test", messages=user("hi"), stream=True) if c.choices)
    assert text.startswith("This is the fake upstream")
    assert proxied.trusted.stats()["by_path"]["/v1/chat/completions"] == before + 2
    assert f"CONNECT 127.0.0.1:{proxied.trusted.port}" in proxied.proxy.lines()
    assert not any("/v1/chat/completions" in line and "https" in line for line in proxied.proxy.lines())


def test_plain_http_upstream_through_the_proxy_with_absolute_uris(proxied, gateway):
    completion = proxied.client().chat.completions.create(model="plain-test", messages=user("hi"))
    assert completion.choices[0].finish_reason == "stop"
    assert f"POST http://127.0.0.1:{gateway.upstream.port}/v1/chat/completions" in proxied.proxy.lines()


def test_no_proxy_hosts_are_reached_directly(proxied):
    client = proxied.client()
    assert client.chat.completions.create(model="tls-direct", messages=user("hi")).choices
    assert client.chat.completions.create(model="plain-direct", messages=user("hi")).choices
    assert not any("localhost" in line for line in proxied.proxy.lines())


def test_a_certificate_outside_the_bundle_is_refused(proxied):
    response = requests.post(f"{proxied.server.url}/v1/chat/completions", timeout=30,
                             headers={"Authorization": f"Bearer {proxied.key}"},
                             json={"model": "untrusted-test", "messages": user("hi")})
    assert response.status_code == 503, response.text
    error = response.json()["error"]
    assert error["code"] == "upstream_unavailable" and "TLS" in error["message"]
    assert f"CONNECT 127.0.0.1:{proxied.untrusted.port}" in proxied.proxy.lines()
    assert proxied.untrusted.stats()["by_path"].get("/v1/chat/completions", 0) == 0


def test_test_connection_takes_the_same_proxies_and_ca_bundle_as_real_traffic(proxied, gateway):
    """`pforte connections test` (the probe behind "Test connection") in the gateway's environment: the CA
    bundle is trusted, https goes through a CONNECT tunnel, plain http as absolute URIs, NO_PROXY direct."""
    def probe(name: str, check: bool = True):
        before = len(proxied.proxy.lines())
        result = proxied.server.cli("connections", "test", name, check=check)
        return result, proxied.proxy.lines()[before:]

    models_before = proxied.trusted.stats()["by_path"].get("/v1/models", 0)
    result, tunnelled = probe("tls-test")
    assert result.stdout.startswith("OK: HTTP 200"), result.stdout
    assert tunnelled == [f"CONNECT 127.0.0.1:{proxied.trusted.port}"]
    assert proxied.trusted.stats()["by_path"]["/v1/models"] == models_before + 1

    result, forwarded = probe("plain-test")
    assert result.stdout.startswith("OK: HTTP 200"), result.stdout
    assert forwarded == [f"GET http://127.0.0.1:{gateway.upstream.port}/v1/models"]

    for name in ("tls-direct", "plain-direct"):
        result, lines = probe(name)
        assert result.stdout.startswith("OK: HTTP 200") and lines == [], (name, result.stdout, lines)

    result, tunnelled = probe("untrusted-test", check=False)
    assert result.returncode == 1 and result.stderr.strip().startswith("Error: tls:"), result.stderr
    assert tunnelled == [f"CONNECT 127.0.0.1:{proxied.untrusted.port}"]
