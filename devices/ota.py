"""Signed firmware images: the manifest, its signature (ed25519) and the OTA commands.

A firmware image travels with a manifest naming its version, the device type it
is for, its size and SHA-256.  The manifest is signed with the vendor's ed25519
private key; gateways and devices hold only the public key.  The signature
covers the canonical bytes of the manifest (see :meth:`FirmwareManifest.signing_bytes`),
and the manifest covers the image through its hash, so one check proves both.

An image of up to :data:`MAX_INLINE_IMAGE_BYTES` (256 KiB) travels inline
(base64) in the ``ota`` command.  A larger one, up to :data:`MAX_IMAGE_BYTES`,
is offered with its manifest and a chunk size, and the device pulls it chunk by
chunk: it asks for chunk ``i`` in its ``downloading`` status (``OtaStatus.chunk``)
and the gateway answers with an ``ota_chunk`` command carrying those bytes.  A
duplicate or out-of-order chunk is ignored and the device asks for the one it
wants; one that does not come is asked for again after a while (a lost request
or chunk).  The whole image is checked against the signed manifest before
anything is installed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from pathlib import Path
from typing import Annotated, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field, model_validator

from devices.protocol import DeviceType

#: Largest image sent inline in an ``ota`` command (base64 in the JSON payload).
MAX_INLINE_IMAGE_BYTES = 256 * 1024
#: Largest image at all (larger ones than the inline limit travel in chunks).
MAX_IMAGE_BYTES = 16 * 1024 * 1024
#: Bytes per ``ota_chunk`` command.
CHUNK_BYTES = 64 * 1024


def _b64_len(size: int) -> int:
    """Longest base64 text of ``size`` bytes (with room for stray padding)."""
    return (size + 2) // 3 * 4 + 4


_MAX_IMAGE_B64 = _b64_len(MAX_INLINE_IMAGE_BYTES)
#: Longest base64 text of a whole image as uploaded to the gateway.
MAX_UPLOAD_B64 = _b64_len(MAX_IMAGE_BYTES)

#: Command names (``cmd/{name}``) of the update: offer an image, send a chunk of it,
#: keep it, go back.
OTA_OFFER = "ota"
OTA_CHUNK = "ota_chunk"
OTA_CONFIRM = "ota_confirm"
OTA_ROLLBACK = "ota_rollback"
OTA_COMMANDS = frozenset({OTA_OFFER, OTA_CHUNK, OTA_CONFIRM, OTA_ROLLBACK})

#: Prefix of the signed bytes, so that a signature over anything else never verifies.
_SIGNING_DOMAIN = b"storeedge-firmware-manifest-v1\n"

_VERSION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$"
Version = Annotated[str, Field(min_length=1, max_length=64, pattern=_VERSION_PATTERN)]
Sha256Hex = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class ImageRejected(ValueError):
    """A firmware image or manifest that must not be installed; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class FirmwareManifest(BaseModel):
    """What the vendor signs: which image, for which devices, and the signature."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: Version
    device_type: DeviceType
    sha256: Sha256Hex
    size: int = Field(ge=1, le=MAX_IMAGE_BYTES)
    signature: str = Field(
        min_length=1, max_length=200, description="base64 ed25519 signature of signing_bytes()"
    )

    def signing_bytes(self) -> bytes:
        """The canonical bytes the signature covers (every field but the signature)."""
        return signing_bytes(self.version, self.device_type, self.sha256, self.size)


def signing_bytes(version: str, device_type: DeviceType | str, sha256: str, size: int) -> bytes:
    body = {
        "device_type": DeviceType(device_type).value,
        "sha256": sha256,
        "size": size,
        "version": version,
    }
    return _SIGNING_DOMAIN + json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


class OtaOffer(BaseModel):
    """The ``ota`` command's args: the signed manifest and either the image itself
    (base64, up to :data:`MAX_INLINE_IMAGE_BYTES`) or the size of the chunks the
    device is to ask for (``chunk_bytes``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    manifest: FirmwareManifest
    image_b64: str | None = Field(default=None, min_length=1, max_length=_MAX_IMAGE_B64)
    chunk_bytes: int | None = Field(default=None, ge=1024, le=CHUNK_BYTES)

    @model_validator(mode="after")
    def _inline_or_chunked(self) -> OtaOffer:
        if (self.image_b64 is None) == (self.chunk_bytes is None):
            raise ValueError("an offer carries either image_b64 or chunk_bytes")
        return self

    @property
    def chunks(self) -> int:
        """How many chunks the image comes in (1 when inline)."""
        if self.chunk_bytes is None:
            return 1
        return -(-self.manifest.size // self.chunk_bytes)


class OtaChunk(BaseModel):
    """The ``ota_chunk`` command's args: bytes ``index * chunk_bytes`` onwards of the
    image of ``version``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: Version
    index: int = Field(ge=0)
    data_b64: str = Field(min_length=1, max_length=_b64_len(CHUNK_BYTES))


class OtaDecision(BaseModel):
    """The args of ``ota_confirm`` and ``ota_rollback``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: Version
    reason: str = Field(default="", max_length=300)


# --------------------------------------------------------------------------- sign / verify


def sign_image(
    private_key: Ed25519PrivateKey, image: bytes, version: str, device_type: DeviceType | str
) -> FirmwareManifest:
    """The signed manifest of ``image``."""
    if not image:
        raise ValueError("the image is empty")
    if len(image) > MAX_IMAGE_BYTES:
        raise ValueError(f"the image has {len(image)} bytes; at most {MAX_IMAGE_BYTES} can be sent")
    digest = hashlib.sha256(image).hexdigest()
    kind = DeviceType(device_type)
    signature = private_key.sign(signing_bytes(version, kind, digest, len(image)))
    return FirmwareManifest(
        version=version,
        device_type=kind,
        sha256=digest,
        size=len(image),
        signature=base64.b64encode(signature).decode(),
    )


def verify_manifest(manifest: FirmwareManifest, public_key: Ed25519PublicKey) -> None:
    """Raise :class:`ImageRejected` unless the trusted key signed this manifest."""
    try:
        signature = base64.b64decode(manifest.signature, validate=True)
    except (binascii.Error, ValueError):
        raise ImageRejected("the signature is not base64") from None
    try:
        public_key.verify(signature, manifest.signing_bytes())
    except InvalidSignature:
        raise ImageRejected(
            "the signature does not verify against the trusted public key"
        ) from None


def verify_image(manifest: FirmwareManifest, image: bytes, public_key: Ed25519PublicKey) -> None:
    """Raise :class:`ImageRejected` unless the manifest is signed and describes ``image``."""
    verify_manifest(manifest, public_key)
    if len(image) != manifest.size:
        raise ImageRejected(f"the image has {len(image)} bytes, the manifest says {manifest.size}")
    digest = hashlib.sha256(image).hexdigest()
    if digest != manifest.sha256:
        raise ImageRejected(f"the image's SHA-256 is {digest}, the manifest says {manifest.sha256}")


def decode_image(image_b64: str, limit: int = MAX_INLINE_IMAGE_BYTES) -> bytes:
    """The bytes of base64 ``image_b64`` (an inline offer's image, a chunk, an upload
    up to ``limit`` bytes); :class:`ImageRejected` when not base64 or too big."""
    if len(image_b64) > _b64_len(limit):
        raise ImageRejected(f"the image is larger than {limit} bytes")
    try:
        image = base64.b64decode(image_b64, validate=True)
    except (binascii.Error, ValueError):
        raise ImageRejected("the image is not base64") from None
    if len(image) > limit:
        raise ImageRejected(f"the image is larger than {limit} bytes")
    return image


def make_offer(manifest: FirmwareManifest, image: bytes) -> dict[str, Any]:
    """The args of an ``ota`` command (JSON-ready): the image inline when it fits
    :data:`MAX_INLINE_IMAGE_BYTES`, else in chunks of :data:`CHUNK_BYTES` on request."""
    if len(image) <= MAX_INLINE_IMAGE_BYTES:
        offer = OtaOffer(manifest=manifest, image_b64=base64.b64encode(image).decode())
    else:
        offer = OtaOffer(manifest=manifest, chunk_bytes=CHUNK_BYTES)
    return offer.model_dump(mode="json", exclude_none=True)


def make_chunk(offer: OtaOffer, image: bytes, index: int) -> dict[str, Any] | None:
    """The args of the ``ota_chunk`` command with chunk ``index`` of ``image``; None
    when the offer is inline or has no such chunk."""
    if offer.chunk_bytes is None or not 0 <= index < offer.chunks:
        return None
    data = image[index * offer.chunk_bytes : (index + 1) * offer.chunk_bytes]
    chunk = OtaChunk(
        version=offer.manifest.version, index=index, data_b64=base64.b64encode(data).decode()
    )
    return chunk.model_dump(mode="json")


# --------------------------------------------------------------------------- keys


def generate_private_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def private_key_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def public_key_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def public_key_text(key: Ed25519PublicKey) -> str:
    """The raw 32-byte public key as base64: one short line, fit for a config file."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def load_private_key(data: bytes) -> Ed25519PrivateKey:
    """An ed25519 private key from PEM (PKCS#8, unencrypted)."""
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"not an unencrypted PEM private key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"not an ed25519 key but {type(key).__name__}")
    return key


def load_public_key(text: str | bytes) -> Ed25519PublicKey:
    """An ed25519 public key from PEM or from base64 of its 32 raw bytes."""
    data = text.encode() if isinstance(text, str) else text
    data = data.strip()
    if data.startswith(b"-----BEGIN"):
        try:
            key = serialization.load_pem_public_key(data)
        except ValueError as exc:
            raise ValueError(f"not a PEM public key: {exc}") from None
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError(f"not an ed25519 key but {type(key).__name__}")
        return key
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("a public key must be PEM or base64 of 32 raw bytes") from None
    if len(raw) != 32:
        raise ValueError(f"an ed25519 public key has 32 bytes, this one {len(raw)}")
    return Ed25519PublicKey.from_public_bytes(raw)


def write_keypair(folder: Path, name: str = "firmware-signing") -> tuple[Path, Path]:
    """Create a key pair: ``{name}.key`` (private, mode 0600) and ``{name}.pub`` (PEM).

    Refuses to overwrite an existing private key.
    """
    folder.mkdir(parents=True, exist_ok=True)
    private_path, public_path = folder / f"{name}.key", folder / f"{name}.pub"
    key = generate_private_key()
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(private_key_pem(key))
    public_path.write_bytes(public_key_pem(key.public_key()))
    return private_path, public_path
