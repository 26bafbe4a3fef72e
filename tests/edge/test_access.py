"""Access: every route of the OpenAPI document declares its roles, and refuses no token
(401) and a wrong role (403).  The routes are read from the document at run time, so
routers added later are covered without touching this test."""

from __future__ import annotations

import re
import time
from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient

from edge.api.app import create_app
from edge.api.deps import (
    PUBLIC_KEY,
    ROLES_KEY,
    ApiContext,
    Caller,
    Role,
    document_roles,
    require_role,
    require_staff,
)
from edge.shoppers.tokens import TokenKind, TokenSigner
from edge.store.repo import Store

STAFF, HQ = "staff-s3cret", "hq-s3cret"
SIGNER = TokenSigner("a-test-secret-of-32-bytes-length")
#: Sample values for path parameters (the role check runs before they are validated).
SAMPLES = {"plate": "0", "line_no": "1"}


def _shopper_token(shopper: str = "shp_a", *, expires_in_s: float = 3600) -> str:
    expires = int((time.time() + expires_in_s) * 1000)
    return SIGNER.sign(TokenKind.SHOPPER, {"sub": shopper, "exp": expires})


TOKENS = {Role.STAFF: STAFF, Role.HQ: HQ, Role.SHOPPER: _shopper_token()}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> TestClient:
    db = tmp_path_factory.mktemp("access") / "g.db"
    Store.open(db).close()
    app = create_app(db, store_id="s-1", staff_token=STAFF, hq_token=HQ, signer=SIGNER)
    return TestClient(app)


def _operations(client: TestClient) -> list[tuple[str, str, dict[str, Any]]]:
    paths = client.get("/openapi.json").json()["paths"]
    return [
        (method.upper(), path, operation)
        for path, operations in sorted(paths.items())
        for method, operation in sorted(operations.items())
    ]


def _url(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: SAMPLES.get(m.group(1), "x"), path)


def test_every_route_declares_its_roles(client: TestClient) -> None:
    undeclared = [
        f"{method} {path}"
        for method, path, op in _operations(client)
        if ROLES_KEY not in op and not op.get(PUBLIC_KEY)
    ]
    assert undeclared == [], "routes without a role (require_role) or `public`"
    assert len(_operations(client)) > 40  # the whole app, not a stub


def test_only_health_and_sign_up_are_public(client: TestClient) -> None:
    public = {f"{m} {p}" for m, p, op in _operations(client) if op.get(PUBLIC_KEY)}
    assert {"GET /healthz", "POST /api/v1/shoppers"} <= public
    assert all(" /api/v1/" not in name or name == "POST /api/v1/shoppers" for name in public)


def test_every_route_refuses_no_token_a_bad_token_and_a_wrong_role(client: TestClient) -> None:
    checked = 0
    for method, path, op in _operations(client):
        if op.get(PUBLIC_KEY):
            continue
        url = _url(path)
        allowed = {Role(r) for r in op[ROLES_KEY]}
        none = client.request(method, url)
        assert none.status_code == 401, (method, path, none.text)
        assert none.headers["www-authenticate"] == "Bearer"
        for bad in ("nope", _shopper_token(expires_in_s=-1), STAFF + "x", "shp.e30.AAAA"):
            resp = client.request(method, url, headers={"Authorization": f"Bearer {bad}"})
            assert resp.status_code == 401, (method, path, bad, resp.text)
        for role in set(Role) - allowed:
            resp = client.request(method, url, headers={"Authorization": f"Bearer {TOKENS[role]}"})
            assert resp.status_code == 403, (method, path, role, resp.text)
        checked += 1
    assert checked > 40


@pytest.mark.parametrize(
    ("path", "roles"),
    [
        ("/api/v1/review/{review_id}/resolve", ["staff"]),
        ("/api/v1/devices", ["hq", "staff"]),
        ("/api/v1/receipts", ["hq", "shopper", "staff"]),
        ("/api/v1/checkin", ["shopper"]),
        ("/api/v1/orders/{order_id}/ready", ["staff"]),
        ("/api/v1/products/{barcode}/price", ["hq", "staff"]),
    ],
)
def test_declared_roles_of_some_routes(client: TestClient, path: str, roles: list[str]) -> None:
    [(_, _, op)] = [
        (m, p, op)
        for m, p, op in _operations(client)
        if p == path and m in {"GET", "POST", "PUT"} and (p != "/api/v1/receipts" or m == "GET")
    ]
    assert op[ROLES_KEY] == roles


def _mini_app(**tokens: Any) -> TestClient:
    app = FastAPI()
    app.state.ctx = ApiContext(db_path=None, store_id="s", **tokens)  # type: ignore[arg-type]

    @app.get("/both")
    def both(
        caller: Annotated[Caller, Depends(require_role(Role.STAFF, Role.HQ))],
    ) -> dict[str, str]:
        return {"role": caller.role.value, "subject": caller.subject}

    @app.get("/staff", dependencies=[Depends(require_staff)])
    def staff_only() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/shopper")
    def shopper(caller: Annotated[Caller, Depends(require_role(Role.SHOPPER))]) -> dict[str, Any]:
        return {"shopper": caller.shopper_id}

    document_roles(app)
    return TestClient(app)


def test_the_caller_is_identified_by_role_and_shopper() -> None:
    client = _mini_app(staff_token=STAFF, hq_token=HQ, signer=SIGNER)
    bearer = {"Authorization": f"Bearer {HQ}"}
    assert client.get("/both", headers=bearer).json() == {"role": "hq", "subject": "hq"}
    assert client.get("/staff", headers=bearer).status_code == 403
    staff = client.get("/staff", headers={"Authorization": f"Bearer {STAFF}"})
    assert staff.status_code == 200
    mine = client.get("/shopper", headers={"Authorization": f"Bearer {_shopper_token('shp_z')}"})
    assert mine.json() == {"shopper": "shp_z"}
    # the browser dashboard may send the token as a cookie instead
    client.cookies.set("storeedge_token", STAFF)
    assert client.get("/staff").status_code == 200
    client.cookies.clear()
    # a check-in token is not a bearer token
    checkin = SIGNER.sign(TokenKind.CHECKIN, {"exp": int(time.time() * 1000) + 60_000})
    assert client.get("/shopper", headers={"Authorization": f"Bearer {checkin}"}).status_code == 401
    doc = client.get("/openapi.json").json()["paths"]
    assert doc["/both"]["get"][ROLES_KEY] == ["hq", "staff"]
    assert doc["/staff"]["get"][ROLES_KEY] == ["staff"]


def test_a_role_without_a_configured_token_is_refused() -> None:
    client = _mini_app(staff_token=STAFF)  # no HQ token, no shopper secret
    assert client.get("/shopper", headers={"Authorization": "Bearer x"}).status_code == 403
    assert client.get("/both", headers={"Authorization": f"Bearer {HQ}"}).status_code == 401
    # another gateway's shopper token (another secret) is no shopper here
    other = TokenSigner("another-secret-of-32-bytes-xxxxx").sign(
        TokenKind.SHOPPER, {"sub": "s", "exp": int(time.time() * 1000) + 60_000}
    )
    client = _mini_app(signer=SIGNER)
    assert client.get("/shopper", headers={"Authorization": f"Bearer {other}"}).status_code == 401
