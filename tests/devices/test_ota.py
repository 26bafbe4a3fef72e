"""Signed firmware manifests: what verifies and what never does."""

from __future__ import annotations

import base64
import hashlib
import os
import stat

import pytest
from pydantic import ValidationError

from devices.ota import (
    CHUNK_BYTES,
    MAX_IMAGE_BYTES,
    MAX_INLINE_IMAGE_BYTES,
    FirmwareManifest,
    ImageRejected,
    OtaChunk,
    OtaOffer,
    decode_image,
    generate_private_key,
    load_private_key,
    load_public_key,
    make_chunk,
    make_offer,
    private_key_pem,
    public_key_pem,
    public_key_text,
    sign_image,
    signing_bytes,
    verify_image,
    write_keypair,
)
from devices.protocol import DeviceType

IMAGE = bytes(range(256)) * 40


@pytest.fixture(scope="module")
def key():
    return generate_private_key()


def test_a_signed_image_verifies_and_its_manifest_says_what_it_is(key):
    manifest = sign_image(key, IMAGE, "2.0.0", "gate")
    assert manifest.device_type is DeviceType.GATE
    assert manifest.size == len(IMAGE)
    assert manifest.sha256 == hashlib.sha256(IMAGE).hexdigest()
    verify_image(manifest, IMAGE, key.public_key())  # no exception
    again = FirmwareManifest.model_validate_json(manifest.model_dump_json())
    verify_image(again, IMAGE, key.public_key())


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"version": "2.0.1"}, "signature does not verify"),
        ({"device_type": "shelf"}, "signature does not verify"),
        ({"size": len(IMAGE) + 1}, "signature does not verify"),
        ({"sha256": "0" * 64}, "signature does not verify"),
        ({"signature": "not base64!"}, "not base64"),
    ],
)
def test_any_change_to_the_manifest_breaks_the_signature(key, change, reason):
    manifest = sign_image(key, IMAGE, "2.0.0", "gate").model_copy(update=change)
    with pytest.raises(ImageRejected, match=reason):
        verify_image(manifest, IMAGE, key.public_key())


def test_a_changed_image_or_another_key_is_refused(key):
    manifest = sign_image(key, IMAGE, "2.0.0", "gate")
    tampered = bytearray(IMAGE)
    tampered[100] ^= 1
    with pytest.raises(ImageRejected, match="SHA-256"):
        verify_image(manifest, bytes(tampered), key.public_key())
    with pytest.raises(ImageRejected, match="bytes, the manifest says"):
        verify_image(manifest, IMAGE + b"x", key.public_key())
    other = generate_private_key()
    with pytest.raises(ImageRejected, match="trusted public key"):
        verify_image(manifest, IMAGE, other.public_key())
    forged = sign_image(other, IMAGE, "2.0.0", "gate")
    with pytest.raises(ImageRejected, match="trusted public key"):
        verify_image(forged, IMAGE, key.public_key())


def test_signing_bytes_are_canonical_and_domain_separated():
    a = signing_bytes("1.0", "gate", "a" * 64, 10)
    assert a == signing_bytes("1.0", DeviceType.GATE, "a" * 64, 10)
    assert a.startswith(b"storeedge-firmware-manifest-v1\n")
    assert b'{"device_type":"gate","sha256":"' in a


def test_manifests_are_strict():
    good = {"version": "1.0", "device_type": "gate", "sha256": "a" * 64, "size": 1}
    with pytest.raises(ValidationError):
        FirmwareManifest.model_validate({**good, "signature": "x", "extra": 1})
    with pytest.raises(ValidationError):
        FirmwareManifest.model_validate({**good, "signature": "x", "version": "../evil"})
    with pytest.raises(ValidationError):
        FirmwareManifest.model_validate({**good, "signature": "x", "size": 10**9})


def test_images_up_to_the_inline_limit_travel_inline(key):
    with pytest.raises(ValueError, match="at most"):
        sign_image(key, b"x" * (MAX_IMAGE_BYTES + 1), "1.0", "gate")
    with pytest.raises(ValueError, match="empty"):
        sign_image(key, b"", "1.0", "gate")
    big = base64.b64encode(b"x" * (MAX_INLINE_IMAGE_BYTES + 3)).decode()
    with pytest.raises(ImageRejected, match="larger than"):
        decode_image(big)
    with pytest.raises(ImageRejected, match="not base64"):
        decode_image("***")
    full = b"y" * MAX_INLINE_IMAGE_BYTES
    offer = OtaOffer.model_validate(make_offer(sign_image(key, full, "1.0", "gate"), full))
    assert offer.image_b64 is not None
    assert offer.chunk_bytes is None
    assert decode_image(offer.image_b64) == full
    assert make_chunk(offer, full, 0) is None  # inline: no chunks


def test_larger_images_are_offered_in_chunks_that_add_up_to_the_image(key):
    image = os.urandom(MAX_INLINE_IMAGE_BYTES + CHUNK_BYTES + 1000)
    manifest = sign_image(key, image, "2.0", "gate")
    args = make_offer(manifest, image)
    assert "image_b64" not in args
    offer = OtaOffer.model_validate(args)
    assert (offer.chunk_bytes, offer.chunks) == (CHUNK_BYTES, 6)  # 5 full, 1 of 1000 bytes
    parts = [OtaChunk.model_validate(make_chunk(offer, image, i)) for i in range(offer.chunks)]
    assert [p.index for p in parts] == list(range(6))
    assert {p.version for p in parts} == {"2.0"}
    joined = b"".join(decode_image(p.data_b64, limit=CHUNK_BYTES) for p in parts)
    assert joined == image
    verify_image(manifest, joined, key.public_key())
    assert make_chunk(offer, image, 6) is None
    assert make_chunk(offer, image, -1) is None


def test_an_offer_is_inline_or_chunked_never_both_or_neither(key):
    manifest = sign_image(key, IMAGE, "1.0", "gate").model_dump(mode="json")
    image_b64 = base64.b64encode(IMAGE).decode()
    for args in ({}, {"image_b64": image_b64, "chunk_bytes": CHUNK_BYTES}):
        with pytest.raises(ValidationError, match="either image_b64 or chunk_bytes"):
            OtaOffer.model_validate({"manifest": manifest, **args})
    with pytest.raises(ValidationError):
        OtaOffer.model_validate({"manifest": manifest, "chunk_bytes": CHUNK_BYTES + 1})


def test_uploads_up_to_the_image_limit_decode(key):
    image = b"z" * (MAX_INLINE_IMAGE_BYTES * 2)
    assert decode_image(base64.b64encode(image).decode(), limit=MAX_IMAGE_BYTES) == image


def test_keys_load_from_pem_and_base64(key):
    public = key.public_key()
    text = public_key_text(public)
    assert len(base64.b64decode(text)) == 32
    for form in (text, text.encode(), public_key_pem(public), public_key_pem(public).decode()):
        assert public_key_text(load_public_key(form)) == text
    assert public_key_text(load_private_key(private_key_pem(key)).public_key()) == text
    with pytest.raises(ValueError, match="32"):
        load_public_key(base64.b64encode(b"short").decode())
    with pytest.raises(ValueError, match="PEM or base64"):
        load_public_key("not a key")
    with pytest.raises(ValueError, match="PEM private key"):
        load_private_key(public_key_pem(public))


def test_write_keypair_keeps_the_private_key_private(tmp_path):
    private_path, public_path = write_keypair(tmp_path / "keys")
    if os.name == "posix":
        assert stat.S_IMODE(private_path.stat().st_mode) == 0o600
    key = load_private_key(private_path.read_bytes())
    assert public_key_text(load_public_key(public_path.read_bytes())) == public_key_text(
        key.public_key()
    )
    with pytest.raises(FileExistsError):
        write_keypair(tmp_path / "keys")
