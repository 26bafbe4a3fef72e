"""``storeedge firmware``: signing keys, signed manifests, and registering an image."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

firmware_app = typer.Typer(
    help="Sign firmware images (ed25519) and register them with a gateway for OTA.",
    no_args_is_help=True,
)


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=code)


@firmware_app.command("keygen")
def firmware_keygen(
    out: Annotated[Path, typer.Option(help="Folder for the key pair.")],
    name: Annotated[str, typer.Option(help="File name stem of the key pair.")] = (
        "firmware-signing"
    ),
) -> None:
    """Create a signing key pair: NAME.key (private, mode 0600; keep it off the gateways)
    and NAME.pub (PEM).  Prints the public key as one base64 line for ota.trusted_public_key."""
    from devices.ota import load_public_key, public_key_text, write_keypair  # noqa: PLC0415

    try:
        private_path, public_path = write_keypair(out, name)
    except FileExistsError:
        raise _fail(f"{out / (name + '.key')} exists; not overwriting a private key") from None
    except OSError as exc:
        raise _fail(f"cannot write the key pair in {out}: {exc.strerror}") from None
    public = public_key_text(load_public_key(public_path.read_bytes()))
    typer.echo(f"private key: {private_path}\npublic key:  {public_path}")
    typer.echo(f"trusted_public_key: {public}")


@firmware_app.command("sign")
def firmware_sign(
    key: Annotated[Path, typer.Option(help="The private key (PEM) from 'firmware keygen'.")],
    image: Annotated[Path, typer.Option(help="The firmware image file.")],
    version: Annotated[str, typer.Option(help="The image's firmware version, e.g. 2.1.0.")],
    device_type: Annotated[
        str, typer.Option("--device-type", help="shelf, gate, esl, fridge, camera.")
    ],
    out: Annotated[Path, typer.Option(help="Where to write the manifest (JSON).")],
) -> None:
    """Write the signed manifest of an image (version, device type, size, SHA-256,
    signature)."""
    from pydantic import ValidationError  # noqa: PLC0415

    from devices.ota import load_private_key, sign_image  # noqa: PLC0415

    try:
        private_key = load_private_key(key.read_bytes())
        data = image.read_bytes()
    except OSError as exc:
        raise _fail(f"{exc.filename}: {exc.strerror}") from None
    except ValueError as exc:
        raise _fail(f"{key}: {exc}") from None
    try:
        manifest = sign_image(private_key, data, version, device_type)
    except (ValueError, ValidationError) as exc:
        raise _fail(str(exc)) from None
    out.write_text(manifest.model_dump_json(indent=2) + "\n", encoding="utf-8")
    typer.echo(
        f"{out}: {manifest.device_type.value} firmware {manifest.version}, "
        f"{manifest.size} bytes, sha256 {manifest.sha256}"
    )


@firmware_app.command("verify")
def firmware_verify(
    public_key: Annotated[Path, typer.Option("--pub", help="The trusted public key file.")],
    manifest: Annotated[Path, typer.Option(help="The manifest (JSON).")],
    image: Annotated[Path, typer.Option(help="The firmware image file.")],
) -> None:
    """Check an image and its manifest the way gateways and devices do (exit 1 if bad)."""
    from pydantic import ValidationError  # noqa: PLC0415

    from devices.ota import (  # noqa: PLC0415
        FirmwareManifest,
        ImageRejected,
        load_public_key,
        verify_image,
    )

    try:
        key = load_public_key(public_key.read_bytes())
        parsed = FirmwareManifest.model_validate_json(manifest.read_bytes())
        data = image.read_bytes()
    except OSError as exc:
        raise _fail(f"{exc.filename}: {exc.strerror}") from None
    except (ValueError, ValidationError) as exc:
        raise _fail(str(exc)) from None
    try:
        verify_image(parsed, data, key)
    except ImageRejected as exc:
        raise _fail(f"refused: {exc.reason}", code=1) from None
    typer.echo(f"OK: {parsed.device_type.value} firmware {parsed.version} verifies")


@firmware_app.command("upload")
def firmware_upload(
    manifest: Annotated[Path, typer.Option(help="The manifest (JSON).")],
    image: Annotated[Path, typer.Option(help="The firmware image file.")],
    api: Annotated[str, typer.Option(help="The gateway's API.")] = "http://127.0.0.1:8080",
    token: Annotated[
        str | None,
        typer.Option(envvar="STOREEDGE_API__STAFF_TOKEN", help="The staff bearer token."),
    ] = None,
) -> None:
    """Register a signed image with a running gateway (POST /api/v1/ota/images)."""
    import base64  # noqa: PLC0415
    import urllib.error  # noqa: PLC0415
    import urllib.request  # noqa: PLC0415

    if not api.startswith(("http://", "https://")):
        raise _fail("--api must be an http(s) URL")
    try:
        body = {
            "manifest": json.loads(manifest.read_text(encoding="utf-8")),
            "image_b64": base64.b64encode(image.read_bytes()).decode(),
        }
    except OSError as exc:
        raise _fail(f"{exc.filename}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise _fail(f"{manifest}: not JSON: {exc}") from None
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked above
        f"{api.rstrip('/')}/api/v1/ota/images",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token or ''}"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            typer.echo(response.read().decode())
    except urllib.error.HTTPError as exc:
        raise _fail(f"{exc.code}: {exc.read().decode(errors='replace')}", code=1) from None
    except urllib.error.URLError as exc:
        raise _fail(f"cannot reach {api}: {exc.reason}", code=1) from None
