"""The sender against a real HQ: batching, acks, backoff, heartbeats, keys, HTTPS."""

import datetime as dt
import ipaddress
import logging
import random

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from cloud_sync.client import Backoff, HqClient, check_url
from cloud_sync.hq.server import HqServer
from cloud_sync.sender import Sender, SenderConfig
from cloud_sync.wire import GatewayStatus
from edge.store.repo import ReceiptRow, Store
from tests.cloud_sync.faultproxy import FaultProxy
from tests.cloud_sync.helpers import ADMIN, add_store, hq_transactions


@pytest.fixture
def hq_target(tmp_path):
    """The sender's tests need one HQ database kind (test_hq_api covers both)."""
    return str(tmp_path / "hq.db")


@pytest.fixture
def store(tmp_path):
    s = Store.open(tmp_path / "g.db")
    yield s
    s.close()


def _receipts(store: Store, n: int, start: int = 0) -> list[str]:
    out = []
    for i in range(start, start + n):
        store.open_session(f"tok-{i}", "gate-in", i)
        out.append(
            store.close_with_receipt(
                f"tok-{i}", "gate-out", i, "EUR", [ReceiptRow("A", "a", 1, 100 + i)]
            )
        )
    return out


def _config(url: str, key: str, **kw) -> SenderConfig:
    defaults = {
        "batch_max_rows": 10,
        "batch_max_age_s": 0.0,
        "poll_s": 0.02,
        "heartbeat_s": 3600,
        "backoff_base_s": 0.05,
        "backoff_max_s": 0.2,
        "request_timeout_s": 5,
    }
    return SenderConfig(hq_url=url, store_id="s-1", api_key=key, **{**defaults, **kw})


def _outbox_ids(store: Store, kind: str = "transaction") -> list[str]:
    return sorted(r["event_id"] for r in store.outbox_rows(kind=kind))


def test_sender_ships_everything_once_and_marks_it_sent(hq, store):
    key = add_store(hq.db, "s-1")
    receipts = _receipts(store, 25)
    store.record_state("shelf-1", "shelf", "online", 1)
    status = GatewayStatus(versions={"gateway": "0.1.0"}, devices={"online": 1})
    sender = Sender(store, _config(hq.url, key, heartbeat_s=0.05), lambda: status)
    sender.start()
    try:
        assert sender.wait_drained(30)
    finally:
        sender.stop()
    items, total = hq_transactions(hq.url, "s-1")
    assert total == len(items) == 25
    assert sorted(i["event_id"] for i in items) == _outbox_ids(store)
    assert sorted(i["receipt_id"] for i in items) == sorted(receipts)
    assert hq.db.event_count("s-1", "device_state") == 1
    assert all(r["sent_ms"] is not None for r in store.outbox_rows())
    assert sender.stats.events_acked == 26
    assert sender.stats.duplicates == 0
    [row] = hq.db.fleet()
    assert row.versions == {"gateway": "0.1.0"}
    assert row.devices == {"online": 1}
    assert row.received_ms is not None


def test_batches_by_size_then_by_age(hq, store):
    key = add_store(hq.db, "s-1")
    _receipts(store, 12)
    sender = Sender(store, _config(hq.url, key, batch_max_rows=5, batch_max_age_s=3600))
    try:
        assert sender.step() == 0  # heartbeat, then a full batch
        assert sender.step() == 0  # a second full batch
        assert store.outbox_backlog().rows == 2
        assert sender.step() > 0  # two rows, young: they wait for more or for age
        assert store.outbox_backlog().rows == 2
        assert sender.stats.batches == 2
        sender.flush()
        sender.step()
        assert store.outbox_backlog().rows == 0
        assert sender.stats.batches == 3
    finally:
        sender.stop()


def test_backs_off_while_hq_is_unreachable_and_catches_up(hq, store, caplog):
    key = add_store(hq.db, "s-1")
    proxy = FaultProxy(("127.0.0.1", hq.server.port))
    proxy.refuse = True
    _receipts(store, 3)
    sender = Sender(store, _config(proxy.url, key, backoff_base_s=30, backoff_max_s=60))
    try:
        sender.step()
        assert sender.stats.consecutive_failures == 1
        tries = proxy.connections
        wait = sender.step()  # within the backoff: no request at all
        assert wait > 0
        assert proxy.connections == tries
        assert store.outbox_backlog().rows == 3  # nothing marked sent
        assert any("unreachable" in r.getMessage() for r in caplog.records)
        proxy.refuse = False
        sender.flush()  # ends the backoff now instead of in 15..30 s
        sender.step()
        sender.step()
        assert store.outbox_backlog().rows == 0
        assert any("reachable again" in r.getMessage() for r in caplog.records)
    finally:
        sender.stop()
        proxy.close()
    assert hq_transactions(hq.url, "s-1")[1] == 3


def test_backoff_grows_with_jitter_and_is_capped():
    b = Backoff(base_s=1.0, max_s=10.0, rng=random.Random(1))
    delays = [b.next_delay() for _ in range(8)]
    caps = [1, 2, 4, 8, 10, 10, 10, 10]
    for delay, cap in zip(delays, caps, strict=True):
        assert cap / 2 <= delay <= cap
    other = Backoff(base_s=1.0, max_s=10.0, rng=random.Random(2))
    assert [other.next_delay() for _ in range(8)] != delays  # jitter: stores do not march
    b.reset()
    assert b.next_delay() <= 1.0


@pytest.mark.allow_error_logs
def test_a_wrong_key_is_an_error_and_nothing_is_marked(hq, store, caplog):
    add_store(hq.db, "s-1")
    _receipts(store, 2)
    sender = Sender(store, _config(hq.url, "sk_wrong"))
    try:
        sender.step()
    finally:
        sender.stop()
    assert store.outbox_backlog().rows == 2
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert "refused" in errors[0].getMessage()
    assert "401" in sender.stats.last_error


def test_urls():
    assert check_url("https://hq.example.com/") == "https://hq.example.com"
    assert check_url("http://127.0.0.1:8900") == "http://127.0.0.1:8900"
    assert check_url("http://localhost:1") == "http://localhost:1"
    assert check_url("http://[::1]:1") == "http://[::1]:1"
    with pytest.raises(ValueError, match="https"):
        check_url("http://hq.example.com")
    assert check_url("http://hq.lan", allow_insecure=True) == "http://hq.lan"
    for bad in ("ftp://hq", "hq.example.com", "https://"):
        with pytest.raises(ValueError, match="must be"):
            check_url(bad)
    config = SenderConfig(hq_url="http://10.0.0.1", store_id="s", api_key="k")
    with pytest.raises(ValueError, match="https"):
        Sender(None, config)  # refused before the outbox is looked at


def _self_signed(tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "storeedge test HQ")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "hq.crt", tmp_path / "hq.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def test_https_with_a_ca_file(tmp_path, store):
    cert, key_file = _self_signed(tmp_path)
    server = HqServer(
        tmp_path / "hq.db", admin_token=ADMIN, ssl_certfile=cert, ssl_keyfile=key_file
    ).start()
    try:
        assert server.url.startswith("https://")
        key = add_store(server.db, "s-1")
        _receipts(store, 3)
        # Without the CA, HQ's certificate is not trusted: nothing leaves.
        untrusting = Sender(store, _config(server.url, key))
        try:
            untrusting.step()
        finally:
            untrusting.stop()
        assert "CERTIFICATE_VERIFY_FAILED" in (untrusting.stats.last_error or "")
        assert store.outbox_backlog().rows == 3
        sender = Sender(store, _config(server.url, key, ca_file=cert))
        try:
            sender.step()
            sender.step()
        finally:
            sender.stop()
        assert store.outbox_backlog().rows == 0
        assert server.db.transactions("s-1", 10, 0)[1] == 3
        client = HqClient(server.url, key, ca_file=cert)
        client.close()
    finally:
        server.stop()


def test_sender_into_a_postgresql_hq(postgres_url, store, tmp_path):
    server = HqServer(postgres_url, admin_token=ADMIN).start()
    proxy = FaultProxy(("127.0.0.1", server.port))
    try:
        key = add_store(server.db, "s-1")
        receipts = _receipts(store, 30)
        sender = Sender(store, _config(proxy.url, key, heartbeat_s=0.05))
        sender.start()
        try:
            proxy.hold_response(b"/api/v1/ingest")  # HQ commits; the answer is lost
            assert proxy.response_held.wait(30)
            proxy.release()
            proxy.drop_all()
            assert sender.wait_drained(30)
        finally:
            sender.stop()
        items, total = hq_transactions(server.url, "s-1")
        assert total == len({i["event_id"] for i in items}) == 30
        assert sorted(i["receipt_id"] for i in items) == sorted(receipts)
        assert sender.stats.duplicates > 0
        assert server.db.fleet()[0].received_ms is not None
    finally:
        proxy.close()
        server.stop()
