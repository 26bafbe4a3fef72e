"""What the shopper app (and staff, for orders and disputes) asks of the running gateway.

``ShopperService`` is built by the gateway (``edge.app.Gateway``), which hands
it the store, the engine's clock, its ``call`` (run on the worker, the one
writer) and its MQTT publish.  Methods named ``*_now`` run on the worker;
the others are called from the API's threads and hand their writes to it.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from devices.layout import Planogram
from devices.protocol import OrderMessage, ReceiptMessage, encode, order_topic
from edge.config import ShoppersConfig
from edge.ingest.dispatcher import Rejected
from edge.shoppers.guidance import FloorPlan, Spot
from edge.shoppers.payments import PaymentProvider, Payments, SimulatedProvider
from edge.shoppers.tokens import TokenInvalid, TokenKind, TokenSigner
from edge.store.repo import Store

log = logging.getLogger(__name__)
T = TypeVar("T")

#: A dispute's review item carries this weight change: a "put-back" of the line, so
#: that resolving it with the product refunds it (the engine's adjustment path).
DISPUTE_SIGN_G = 1.0
#: "Popular now": receipts of this many last hours.
POPULAR_WINDOW_MS = 2 * 3600 * 1000


def make_provider(cfg: ShoppersConfig) -> PaymentProvider | None:
    if cfg.payments.provider == "none":
        return None
    return SimulatedProvider(cfg.payments.decline_over_minor)


class ShopperService:
    def __init__(
        self,
        cfg: ShoppersConfig,
        store_id: str,
        planogram: Planogram,
        store: Store,
        clock_ms: Callable[[], int],
        call: Callable[[Callable[[], Any]], Any],
        publish: Callable[[str, bytes], None],
        *,
        provider: PaymentProvider | None = None,
        floor: FloorPlan | None = None,
    ) -> None:
        self.cfg = cfg
        self.store_id = store_id
        self.planogram = planogram
        self.store = store
        self.clock_ms = clock_ms
        self._call = call
        self._publish = publish
        if cfg.secret is None:
            if cfg.verify_checkin:
                log.warning(
                    "no shoppers.secret configured: a random one is used, shopper tokens "
                    "and check-in codes end with this process (set STOREEDGE_SHOPPERS__SECRET)"
                )
            self.signer = TokenSigner(TokenSigner.random_secret())
        else:
            self.signer = TokenSigner(cfg.secret.get_secret_value())
        self._floor = floor  # built on first use: replays and benchmarks never need it
        self._floor_given = floor is not None
        self.payments = Payments(
            store, provider if provider is not None else make_provider(cfg), call, clock_ms
        )
        self._products = {p.barcode: p for p in planogram.products}

    def replace_planogram(self, planogram: Planogram) -> None:
        """A new planogram while running: products and prices from now on; the floor
        plan (derived from the plates) is built again on first use."""
        self._products = {p.barcode: p for p in planogram.products}
        self.planogram = planogram
        if not self._floor_given:
            self._floor = None

    @property
    def floor(self) -> FloorPlan:
        if self._floor is None:
            self._floor = FloorPlan(self.planogram, self.cfg.guidance)
        return self._floor

    def call(self, action: Callable[[], T]) -> T:
        result: T = self._call(action)
        return result

    # ------------------------------------------------------------------ identity

    def register_shopper(self) -> dict[str, Any]:
        """A new app shopper: an id and its signed bearer token (stateless)."""
        shopper_id = "shp_" + secrets.token_urlsafe(12)
        # checked by the API against the wall clock (check-ins: the engine's clock)
        expires = int(time.time() * 1000) + round(self.cfg.token_ttl_s * 1000)
        token = self.signer.sign(TokenKind.SHOPPER, {"sub": shopper_id, "exp": expires})
        return {"shopper_id": shopper_id, "token": token, "expires_ms": expires}

    def issue_checkin(self, shopper_id: str) -> dict[str, Any]:
        """A short-lived, signed, single-use token for the entry gate's QR reader."""
        now = self.clock_ms()
        expires = now + round(self.cfg.checkin_ttl_s * 1000)
        token = self.signer.sign(TokenKind.CHECKIN, {"exp": expires, "n": secrets.token_urlsafe(9)})
        self.call(lambda: self.store.add_checkin(token, shopper_id, now, expires))
        return {
            "session_token": token,
            "qr": token,
            "expires_ms": expires,
        }

    # ------------------------------------------------------------------ gates (worker)

    def on_gate(
        self,
        gate: str,
        direction: str,
        token: str,
        ts_ms: int,
        engine_on_gate: Callable[[str, str, str, int], None],
    ) -> None:
        """Entry: only a signed, unexpired, unused check-in token of ours opens a session
        (else the message is refused: a dead letter with the reason, and an event)."""
        if direction != "entry" or not self.cfg.verify_checkin:
            engine_on_gate(gate, direction, token, ts_ms)
            return
        now = self.clock_ms()
        reason = self._entry_refusal(token, now)
        if reason is not None:
            self.store.refuse_checkin(token, gate, ts_ms, reason)
            raise Rejected(f"check-in refused: {reason}")
        engine_on_gate(gate, direction, token, ts_ms)
        self.store.use_checkin(token, gate, ts_ms)

    def _entry_refusal(self, token: str, now_ms: int) -> str | None:
        try:
            self.signer.verify(TokenKind.CHECKIN, token, now_ms=now_ms)
        except TokenInvalid as exc:
            return str(exc)
        row = self.store.checkin(token)
        if row is None:
            return "not issued by this store"
        if row["used_ms"] is not None or self.store.session_exists(token):
            return "already used"
        return None

    # ------------------------------------------------------------------ receipts (worker)

    def on_receipt(self, receipt: ReceiptMessage) -> None:
        """Right after the receipt's commit: its charge (idempotency key: the receipt)."""
        if self.payments.provider is not None and receipt.total_minor > 0:
            self.payments.request_owed(receipt.receipt_id)

    def after_review(self) -> None:
        """A review decision may have adjusted an issued receipt: charge or refund it."""
        self.call(self.payments.request_owed)

    # ------------------------------------------------------------------ disputes

    def dispute(
        self, shopper_id: str, receipt_id: str, line_no: int, quantity: int | None, reason: str
    ) -> dict[str, Any]:
        """A shopper disputes a line of their receipt: it goes to staff's review queue
        as a put-back of that line; staff resolving it with the product refund it."""

        def apply() -> dict[str, Any]:
            if self.store.receipt_shopper(receipt_id) != shopper_id:
                raise LookupError(f"no receipt {receipt_id}")
            line = self.store.receipt_line(receipt_id, line_no)
            if line is None:
                raise LookupError(f"receipt {receipt_id} has no line {line_no}")
            units = quantity or int(line["quantity"])
            if units > int(line["quantity"]):
                raise ValueError(f"line {line_no} has only {line['quantity']} units")
            product = self._products.get(line["barcode"])
            weight = (product.unit_weight_g if product else 0.0) * units
            body = {
                "dispute": {"receipt_id": receipt_id, "line_no": line_no, "reason": reason},
                "delta_g": round(max(weight, DISPUTE_SIGN_G), 1),
                "plates": [],
                "candidates": [
                    {
                        "barcode": line["barcode"],
                        "quantity": units,
                        "likelihood": 1.0,
                        "confidence": 1.0,
                    }
                ],
                "shoppers": [{"session_token": line["session_token"], "distance_m": None}],
            }
            ids = self.store.add_dispute(
                receipt_id,
                line_no,
                shopper_id,
                units,
                reason,
                self.clock_ms(),
                body,
                max(weight, DISPUTE_SIGN_G),
            )
            return {
                **ids,
                "receipt_id": receipt_id,
                "line_no": line_no,
                "quantity": units,
                "state": "open",
            }

        return self.call(apply)

    # ------------------------------------------------------------------ guidance

    def search(self, reader: Store, query: str, limit: int = 20) -> list[dict[str, Any]]:
        """Products by barcode (exact or prefix) or by every word of the name.

        ``reader``: the API's read-only store (prices, stock); so below."""
        q = query.strip().lower()
        words = q.split()
        found = []
        for product in self.planogram.products:
            barcode_hit = product.barcode.lower().startswith(q) if q else False
            name_hit = bool(words) and all(w in product.name.lower() for w in words)
            if barcode_hit or name_hit:
                found.append((0 if product.barcode.lower() == q else 1, product.name, product))
        found.sort(key=lambda f: (f[0], f[1]))
        stock = reader.units_on_shelves()  # once, not once per product
        return [self.product_info(reader, p.barcode, stock=stock) for _, _, p in found[:limit]]

    def product_info(
        self,
        reader: Store,
        barcode: str,
        *,
        with_directions: bool = False,
        stock: Mapping[str, int] | None = None,
    ) -> dict[str, Any]:
        """``stock``: units per product on the shelves, when the caller has read them."""
        product = self._products.get(barcode)
        if product is None:
            raise LookupError(f"no product {barcode!r}")
        price = reader.price_minor(barcode, product.price_minor)
        spots = self.floor.locate(barcode)
        info: dict[str, Any] = {
            "barcode": barcode,
            "name": product.name,
            "price_minor": price,
            "currency": self.planogram.currency,
            "locations": [
                {
                    **s.as_json(),
                    "walk_m": round(self.floor.distance(self.floor.entrance, s.stand), 1),
                }
                for s in spots
            ],
            "in_stock": (reader.units_on_shelves() if stock is None else stock).get(barcode),
        }
        if with_directions and spots:
            path = self.floor.path(self.floor.entrance, spots[0].stand)
            info["directions"] = {
                "from": "entrance",
                "waypoints": [[round(x, 2), round(y, 2)] for x, y in path],
                "steps": self.floor.directions(path, spots[0]),
            }
        return info

    def recommendations(self, reader: Store, barcodes: list[str], limit: int = 5) -> dict[str, Any]:
        together = reader.bought_together(barcodes, limit) if barcodes else []
        popular = reader.popular_since(self.clock_ms() - POPULAR_WINDOW_MS, limit)

        def named(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
            return [
                {**r, "name": self._products[r["barcode"]].name}
                for r in rows
                if r["barcode"] in self._products
            ]

        return {"bought_together": named(together), "popular_now": named(popular)}

    def route(self, items: list[str]) -> dict[str, Any]:
        """A shopping list (barcodes) as the shortest walk found through the store."""
        stops: list[tuple[str, Spot]] = []
        missing = []
        seen = set()
        for barcode in items:
            if barcode in seen:
                continue
            seen.add(barcode)
            spot = self.floor.nearest_spot(barcode) if barcode in self._products else None
            if spot is None:
                missing.append(barcode)
            else:
                stops.append((barcode, spot))
        walk = self.floor.walk([s.stand for _, s in stops])
        ordered = []
        for leg in walk.legs:
            if leg.to >= len(stops):
                continue
            barcode, spot = stops[leg.to]
            ordered.append(
                {
                    "barcode": barcode,
                    "name": self._products[barcode].name,
                    "location": spot.as_json(),
                    "walk_m": round(leg.metres, 1),
                    "steps": self.floor.directions(leg.path, spot),
                }
            )
        return {
            "stops": ordered,
            "not_found": missing,
            "total_m": round(walk.metres, 1),
            "to_exit_m": round(walk.legs[-1].metres, 1),
        }

    # ------------------------------------------------------------------ online orders

    def place_order(
        self, shopper_id: str, items: dict[str, int], client_ref: str | None
    ) -> dict[str, Any]:
        """An online order: stock checked, a pick list in walking order, and the charge
        (idempotency key: the order).  The same ``client_ref`` twice is one order."""
        unknown = sorted(b for b in items if b not in self._products)
        if unknown:
            raise LookupError(f"unknown products: {', '.join(unknown)}")
        plan = self.route(sorted(items))

        def apply() -> dict[str, Any]:
            if client_ref is not None:
                existing = self.store.order_id_for(shopper_id, client_ref)
                if existing is not None:
                    found = self.store.order(existing)
                    assert found is not None
                    return found
            on_shelves = self.store.units_on_shelves()
            promised = self.store.units_promised()
            lines, short = [], []
            for stop in plan["stops"]:
                barcode = stop["barcode"]
                product = self._products[barcode]
                stock = on_shelves.get(barcode)
                free = None if stock is None else stock - promised.get(barcode, 0)
                if free is not None and free < items[barcode]:
                    short.append({"barcode": barcode, "wanted": items[barcode], "available": free})
                price = self.store.price_minor(barcode, product.price_minor)
                lines.append(
                    {
                        "barcode": barcode,
                        "name": product.name,
                        "quantity": items[barcode],
                        "in_stock": free,
                        "unit_price_minor": price,
                        "line_total_minor": price * items[barcode],
                    }
                )
            if short:
                raise OutOfStock(short)
            order_id = "ord_" + secrets.token_urlsafe(9)
            now = self.clock_ms()
            self.store.add_order(
                order_id, shopper_id, client_ref, self.planogram.currency, lines, plan, now
            )
            order = self.store.order(order_id)
            assert order is not None
            self.payments.request(
                f"order:{order_id}",
                "charge",
                int(order["total_minor"]),
                order["currency"],
                shopper_id,
                order_id=order_id,
            )
            self._tell(order)
            return order

        return self.call(apply)

    def advance_order(self, order_id: str, to_state: str, by: str) -> dict[str, Any]:
        """Staff: ``ready`` (picked, waiting at the counter) or ``collected``."""
        before = {"ready": "placed", "collected": "ready"}[to_state]

        def apply() -> dict[str, Any]:
            if self.store.order(order_id) is None:
                raise LookupError(f"no order {order_id}")
            self.store.advance_order(order_id, before, to_state, self.clock_ms(), by)
            order = self.store.order(order_id)
            assert order is not None
            self._tell(order)
            return order

        return self.call(apply)

    def _tell(self, order: dict[str, Any]) -> None:
        message = OrderMessage(
            order_id=order["order_id"],
            shopper_id=order["shopper_id"],
            state=order["state"],
            currency=order["currency"],
            total_minor=order["total_minor"],
            ts=self.clock_ms(),
        )
        self._publish(order_topic(self.store_id, order["shopper_id"]), encode(message))


class OutOfStock(ValueError):
    def __init__(self, lines: list[dict[str, Any]]) -> None:
        super().__init__(
            "not enough on the shelves: "
            + ", ".join(f"{s['barcode']} ({s['available']} of {s['wanted']})" for s in lines)
        )
        self.lines = lines
