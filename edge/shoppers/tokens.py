"""Signed tokens (HMAC-SHA256): the shopper app's bearer token and the check-in QR.

A token is ``{kind}.{claims}.{signature}``: the claims are compact JSON in
base64url, the signature is HMAC-SHA256 over ``{kind}.{claims}`` with a key
derived from the gateway's secret and the kind, so a token of one kind is never
accepted as another.  Only characters that are safe in an MQTT topic, a URL and
a QR code are used (``A-Z a-z 0-9 - _ .``).

The secret comes from the configuration (``STOREEDGE_SHOPPERS__SECRET``) and
is never committed; the demo makes a random one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from enum import StrEnum
from typing import Any

#: How long a token may be, at most, before it is looked at.
MAX_TOKEN_CHARS = 1024
#: HMAC-SHA256 truncated to 128 bits: the check-in token must fit a gate event (128 chars).
MAC_BYTES = 16


class TokenKind(StrEnum):
    SHOPPER = "shp"  # the app's bearer token: who the shopper is
    CHECKIN = "chk"  # the QR shown at the entry gate: one visit, short-lived


class TokenInvalid(ValueError):
    """A token that is not accepted; the message says why (for refusals and dead letters)."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenSigner:
    """Signs and checks tokens with one secret (at least 16 bytes)."""

    def __init__(self, secret: str | bytes) -> None:
        raw = secret.encode("utf-8") if isinstance(secret, str) else secret
        if len(raw) < 16:
            raise ValueError("the token secret must be at least 16 bytes")
        self._keys = {
            kind: hmac.new(raw, f"storeedge-token-{kind.value}".encode(), hashlib.sha256).digest()
            for kind in TokenKind
        }

    @staticmethod
    def random_secret() -> str:
        return secrets.token_urlsafe(32)

    def sign(self, kind: TokenKind, claims: dict[str, Any]) -> str:
        body = _b64(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode("utf-8"))
        head = f"{kind.value}.{body}"
        return f"{head}.{_b64(self._mac(kind, head))}"

    def verify(self, kind: TokenKind, token: str, *, now_ms: int | None) -> dict[str, Any]:
        """The claims of a well-signed token of ``kind``; with ``now_ms``, also unexpired.

        Raises ``TokenInvalid`` with the reason otherwise.
        """
        if len(token) > MAX_TOKEN_CHARS:
            raise TokenInvalid("token too long")
        parts = token.split(".")
        if len(parts) != 3 or parts[0] not in {k.value for k in TokenKind}:
            raise TokenInvalid("not a signed token")
        if parts[0] != kind.value:
            other = TokenKind(parts[0]).name.lower()
            raise TokenInvalid(f"a {other} token, not a {kind.name.lower()} one")
        head = f"{parts[0]}.{parts[1]}"
        try:
            signature = _unb64(parts[2])
            claims = json.loads(_unb64(parts[1]))
        except (binascii.Error, ValueError):
            raise TokenInvalid("malformed token") from None
        if not hmac.compare_digest(signature, self._mac(kind, head)):
            raise TokenInvalid("bad signature")
        if not isinstance(claims, dict):
            raise TokenInvalid("malformed token")
        expires = claims.get("exp")
        if not isinstance(expires, int):
            raise TokenInvalid("token without expiry")
        if now_ms is not None and now_ms >= expires:
            raise TokenInvalid("token expired")
        return claims

    def _mac(self, kind: TokenKind, head: str) -> bytes:
        digest = hmac.new(self._keys[kind], head.encode("ascii"), hashlib.sha256).digest()
        return digest[:MAC_BYTES]
