import pytest

from devices.credentials import generate_password, hash_password, verify_password

# made by `mosquitto_passwd -c -b pw dev1 secret` (Mosquitto 2.0)
MOSQUITTO_HASH = (
    "$7$101$NDyW2gsgQlYWvN7v$LTqxicfx4K9gZuoO0ExXx8Z/5p1jhIZnhGoFQ7BbODA14Tf6C0fN9CZhPi02z"
    "br/qhdPdB8uSp6zfirYGMgoCw=="
)


def test_verifies_mosquittos_own_hash():
    assert verify_password("secret", MOSQUITTO_HASH)
    assert not verify_password("Secret", MOSQUITTO_HASH)


def test_round_trip_and_salted():
    password = generate_password()
    a, b = hash_password(password), hash_password(password)
    assert a != b  # a fresh salt each time
    assert verify_password(password, a)
    assert verify_password(password, b)
    assert len(password) >= 24


def test_rejects_other_formats():
    with pytest.raises(ValueError, match="PBKDF2"):
        verify_password("x", "plain-text")
