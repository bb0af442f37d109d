"""HTTPS on 127.0.0.1 with certificates made by trustme: what fails verification is `tls`,
`-k` (verify=False) and a CA bundle from the environment make it succeed, and a server that
stalls or drips the handshake still ends at the deadline."""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from fetchpool.client import Client, fetch_one
from fetchpool.result import ErrorKind, Result

from faultserver import BOUND, FAST, SPARE, FaultServer, T, loopback_getaddrinfo, options, serving, timed_fetch

pytestmark = pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket, "getaddrinfo", loopback_getaddrinfo)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def ca_file(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


def _server_context(configure: Callable[[ssl.SSLContext], None]) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    configure(ctx)
    return ctx


def _https(configure: Callable[[ssl.SSLContext], None]) -> Iterator[FaultServer]:
    with serving(tls=_server_context(configure)) as srv:
        yield srv


@pytest.fixture(scope="module")
def good(ca: trustme.CA) -> Iterator[FaultServer]:
    """A certificate for 127.0.0.1 and localhost, signed by the trustme CA."""
    yield from _https(ca.issue_cert("127.0.0.1", "localhost").configure_cert)


@pytest.fixture(scope="module")
def wrong_host(ca: trustme.CA) -> Iterator[FaultServer]:
    """Signed by the same CA, but for another name."""
    yield from _https(ca.issue_cert("other.test").configure_cert)


@pytest.fixture(scope="module")
def expired(ca: trustme.CA) -> Iterator[FaultServer]:
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = ca.issue_cert(
        "127.0.0.1", not_before=now - datetime.timedelta(days=30), not_after=now - datetime.timedelta(days=1)
    )
    yield from _https(cert.configure_cert)


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultServer]:
    """A leaf certificate for 127.0.0.1 that signs itself: no CA anywhere vouches for it."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("self-signed")
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    yield from _https(lambda ctx: ctx.load_cert_chain(folder / "cert.pem", folder / "key.pem"))


def _servers(request: pytest.FixtureRequest, name: str) -> FaultServer:
    return request.getfixturevalue(name)


def assert_tls(result: Result, took: float, fragment: str) -> None:
    assert result.error is ErrorKind.TLS, (result.error, result.error_message)
    assert not result.ok and result.status is None and result.bytes == 0
    message = result.error_message or ""
    assert message.startswith("TLS ") and fragment in message, message
    assert "\n" not in message and "Caused by" not in message and "_ssl.c" not in message, message
    assert took < FAST, took


@pytest.mark.parametrize(
    ("server", "trust", "fragment"),
    [
        ("good", False, "unable to get local issuer certificate"),  # unknown CA
        ("self_signed", False, "self-signed certificate"),
        ("self_signed", True, "self-signed certificate"),
        ("wrong_host", True, "IP address mismatch, certificate is not valid for '127.0.0.1'"),
        ("expired", True, "certificate has expired"),
    ],
)
def test_unverifiable_certificates_are_tls(
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    ca_file: Path,
    server: str,
    trust: bool,
    fragment: str,
) -> None:
    if trust:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca_file))
    srv = _servers(request, server)
    result, took = timed_fetch(srv.url("/ok"), f"TLS {server}{' (CA trusted)' if trust else ''}", timeout=SPARE)
    assert_tls(result, took, fragment)
    assert result.error_message == f"TLS certificate verification failed: {fragment}"


@pytest.mark.parametrize("server", ["good", "self_signed", "wrong_host", "expired"])
def test_insecure_skips_verification(request: pytest.FixtureRequest, server: str) -> None:
    srv = _servers(request, server)
    result, took = timed_fetch(srv.url("/ok"), f"TLS {server} with -k", timeout=SPARE, verify=False)
    assert (result.ok, result.status, result.bytes, result.error) == (True, 200, 3, None), result
    assert took < FAST


@pytest.mark.parametrize("variable", ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"])
def test_ca_bundle_from_the_environment_is_trusted(
    good: FaultServer, monkeypatch: pytest.MonkeyPatch, ca_file: Path, variable: str
) -> None:
    monkeypatch.setenv(variable, str(ca_file))
    result, took = timed_fetch(good.url("/ok"), f"TLS with {variable}", timeout=SPARE)
    assert (result.ok, result.status, result.bytes, result.error) == (True, 200, 3, None), result
    localhost, _ = timed_fetch(f"https://localhost:{good.port}/ok", f"TLS localhost with {variable}", timeout=SPARE)
    assert localhost.ok, localhost


def test_https_to_a_plain_http_server_is_tls(server) -> None:
    """http.server answers the ClientHello with a plain-text 400: not a TLS record."""
    port = server.server_address[1]
    result, took = timed_fetch(f"https://127.0.0.1:{port}/ok", "https:// to plain HTTP", timeout=SPARE)
    assert_tls(result, took, "TLS handshake failed: wrong version number")


def test_plain_http_to_a_tls_server_is_protocol(good: FaultServer) -> None:
    result, took = timed_fetch(f"http://127.0.0.1:{good.port}/ok", "http:// to HTTPS", timeout=SPARE)
    assert result.error is ErrorKind.PROTOCOL, (result.error, result.error_message)
    assert took < FAST


def test_tls_alert_instead_of_a_server_hello_is_tls() -> None:
    with serving(on_accept="tls-alert") as srv:
        result, took = timed_fetch(f"https://127.0.0.1:{srv.port}/", "TLS alert", timeout=SPARE)
    assert_tls(result, took, "TLS handshake failed")


@pytest.mark.parametrize("behaviour", ["stall", "tls-drip", "slam"])
def test_handshake_that_never_finishes_ends_in_time(behaviour: str) -> None:
    """A ServerHello that never comes, comes one byte at a time, or a close instead."""
    ends_by_itself = behaviour == "slam"
    with serving(on_accept=behaviour) as srv:
        url = f"https://127.0.0.1:{srv.port}/"
        result, took = timed_fetch(url, f"TLS handshake: {behaviour}", timeout=SPARE if ends_by_itself else T)
    assert not result.ok and result.status is None
    if ends_by_itself:
        assert result.error in (ErrorKind.TLS, ErrorKind.PROTOCOL), result
        assert took < FAST, took
    else:
        assert result.error is ErrorKind.TIMEOUT, result
        assert took < BOUND, took


@pytest.mark.parametrize(
    ("path", "kind", "size"),
    [("/reset-body", ErrorKind.READ, 1000), ("/short-body", ErrorKind.READ, 10), ("/close", ErrorKind.PROTOCOL, 0)],
)
def test_broken_answers_over_tls(good: FaultServer, path: str, kind: ErrorKind, size: int) -> None:
    result, took = timed_fetch(good.url(path), f"TLS {path}", timeout=SPARE, verify=False)
    assert (result.error, result.bytes) == (kind, size), result
    assert took < FAST


def test_drip_over_tls_hits_the_total_deadline(good: FaultServer) -> None:
    result, took = timed_fetch(good.url("/drip-body"), "TLS /drip-body", timeout=T, verify=False)
    assert (result.error, result.status) == (ErrorKind.TIMEOUT, 200), result
    assert T * 0.95 <= took < BOUND, took


def test_endless_body_over_tls_stops_at_max_bytes(good: FaultServer) -> None:
    cap = 5 * 1024 * 1024
    result, took = timed_fetch(
        good.url("/chunked-forever"), "TLS /chunked-forever", timeout=3 * SPARE, verify=False, max_bytes=cap
    )
    assert (result.ok, result.bytes, result.truncated) == (True, cap, True), result
    assert took < 2 * SPARE  # the cap ended it, not the deadline


def test_cli_insecure_prints_no_warning(self_signed: FaultServer) -> None:
    """-k was asked for: urllib3's InsecureRequestWarning (one per host) must not flood stderr."""
    from conftest import run_cli

    proc = run_cli("-k", "--retries", "0", input=(self_signed.url("/ok") + "\n").encode())
    assert proc.returncode == 0, proc.stdout
    assert proc.stderr == b""


@pytest.mark.parametrize("verify", ["ca_bundle", False])
def test_certificates_are_loaded_once_not_per_connection(
    good: FaultServer, monkeypatch: pytest.MonkeyPatch, ca_file: Path, verify: object
) -> None:
    """Every connection to the fault server is new; the TLS context (and its CA bundle,
    some 50 ms of CPU to load) must still be made once, and verification still apply."""
    from fetchpool import adapter as adapter_module

    made: list[object] = []
    real = adapter_module._new_context
    monkeypatch.setattr(adapter_module, "_CONTEXTS", {})
    monkeypatch.setattr(adapter_module, "_new_context", lambda v: made.append(v) or real(v))
    setting = str(ca_file) if verify == "ca_bundle" else False
    if setting:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", setting)
    client = Client(options(timeout=SPARE, retries=0, verify=bool(setting)))
    results = [fetch_one(good.url(f"/ok?{i}"), client) for i in range(8)]
    assert all(r.ok for r in results), results
    assert made == [setting]
    if setting:  # the shared context still verifies: an unknown CA is refused
        monkeypatch.delenv("REQUESTS_CA_BUNDLE")
        refused = fetch_one(good.url("/ok"), Client(options(timeout=SPARE, retries=0)))
        assert refused.error == ErrorKind.TLS, refused
