"""Who may call HQ: each store with its own API key, staff with the admin token.

Keys are random (256 bits) and stored as SHA-256 hashes: a stolen database gives
no key away.  The admin token comes from ``STOREEDGE_HQ_ADMIN_TOKEN``.  Both are
sent as ``Authorization: Bearer ...``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

ADMIN_TOKEN_ENV = "STOREEDGE_HQ_ADMIN_TOKEN"  # noqa: S105 - a variable name, not a secret


def new_api_key() -> str:
    return "sk_" + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def bearer(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer TOKEN`` header, or None."""
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


def is_admin(token: str | None, admin_token: str | None) -> bool:
    if not token or not admin_token:
        return False
    return hmac.compare_digest(token.encode("utf-8"), admin_token.encode("utf-8"))
