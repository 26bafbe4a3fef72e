"""Mosquitto configuration for one store: conf, password file and ACL, from templates.

Device users are named by their device id, so one ``pattern`` rule per topic kind
(``%u``) confines every device to its own topics; the gateway reads and writes
the whole store; anonymous clients are refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from devices.protocol import device_acl_patterns, store_filter


@dataclass(frozen=True, slots=True)
class BrokerFiles:
    conf: str
    passwords: str
    acl: str


def _fill(template: str, values: Mapping[str, str]) -> str:
    out = template
    for key, value in values.items():
        out = out.replace("{{" + key + "}}", value)
    if "{{" in out:
        start = out.index("{{")
        raise ValueError(f"template placeholder left unfilled: {out[start : out.index('}}') + 2]}")
    return out


def render(
    *,
    conf_template: str,
    acl_template: str,
    store_id: str,
    out_dir: Path,
    port: int,
    bind_address: str,
    gateway_user: str,
    users: Mapping[str, str],
) -> BrokerFiles:
    """``users``: username -> password hash ($7$), the gateway's among them."""
    if gateway_user not in users:
        raise ValueError(f"the gateway user {gateway_user!r} has no credentials")
    passwords = "".join(f"{name}:{hashed}\n" for name, hashed in sorted(users.items()))
    acl = _fill(
        acl_template,
        {
            "gateway_user": gateway_user,
            "store_filter": store_filter(store_id),
            "device_patterns": "\n".join(
                f"pattern {access} {topic}" for access, topic in device_acl_patterns(store_id)
            ),
        },
    )
    conf = _fill(
        conf_template,
        {
            "port": str(port),
            "bind_address": bind_address,
            "password_file": str(out_dir / "passwd"),
            "acl_file": str(out_dir / "acl"),
            "persistence_location": f"{out_dir / 'data'}/",
        },
    )
    return BrokerFiles(conf=conf, passwords=passwords, acl=acl)
