"""Per-device MQTT credentials: random passwords, stored only as Mosquitto-compatible hashes.

The hash is Mosquitto 2's own format (``$7$`` = PBKDF2-HMAC-SHA512, 101 rounds, a
12-byte salt), so a password file can be written from the stored hashes alone.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

ITERATIONS = 101
_SALT_BYTES = 12
_FORMAT = re.compile(r"^\$7\$(\d+)\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)$")


def generate_password() -> str:
    return secrets.token_urlsafe(24)


def hash_password(password: str, *, salt: bytes | None = None, iterations: int = ITERATIONS) -> str:
    salt = salt if salt is not None else secrets.token_bytes(_SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_password(password: str, hashed: str) -> bool:
    match = _FORMAT.match(hashed)
    if match is None:
        raise ValueError("not a $7$ (PBKDF2-SHA512) password hash")
    iterations, salt, digest = int(match[1]), base64.b64decode(match[2]), match[3]
    expected = hash_password(password, salt=salt, iterations=iterations).rsplit("$", 1)[1]
    return hmac.compare_digest(expected, digest)
