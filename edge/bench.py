"""``storeedge bench ingest``: how many load-cell samples the gateway's ingest path handles.

Feeds pre-encoded weight telemetry (JSON, 12 samples per plate per message)
through the same Dispatcher -> CheckoutEngine path as live operation, on one
thread, without the broker, and reports messages and samples per second.
"""

from __future__ import annotations

import json
import random
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

from devices.layout import Planogram, Plate, Product, Shelf
from devices.protocol import SAMPLES_PER_BATCH, weight_topic
from edge.app import Gateway
from edge.config import GatewayConfig
from edge.ingest.dedupe import SeqTracker

#: The AiFi Nanostore's load: 306 plates at 60 Hz.
NANOSTORE_SAMPLES_PER_S = 306 * 60


def _planogram(shelves: int, plates: int) -> Planogram:
    product = Product(barcode="1", name="bench", unit_weight_g=250, price_minor=100)
    return Planogram(
        products=[product],
        shelves=[
            Shelf(
                device_id=f"shelf-{s}",
                plates=[Plate(plate=p, barcode="1", stock=10) for p in range(plates)],
            )
            for s in range(shelves)
        ],
    )


def bench_ingest(
    config: GatewayConfig, *, shelves: int, plates: int, seconds: float, seed: int = 0
) -> dict[str, Any]:
    rng = random.Random(seed)
    planogram = _planogram(shelves, plates)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = config.model_copy(  # the store's own labels name products the bench lacks
            update={
                "database": config.database.model_copy(update={"path": Path(tmp) / "bench.db"}),
                "esls": [],
            }
        )
        gateway = Gateway(cfg, planogram)
        # 10 s of telemetry per shelf: two picks, then the two lanes restocked, so that
        # the stream can be replayed in a loop with 4 weight events per round.
        messages: list[tuple[str, bytes]] = []
        loads = {(s, p): 2500.0 for s in range(shelves) for p in range(plates)}
        a = (rng.randrange(shelves), rng.randrange(plates))
        b = ((a[0] + 1) % shelves, a[1])
        changes = {5: (a, -250.0), 15: (b, -250.0), 30: (a, 250.0), 40: (b, 250.0)}
        for i in range(50):
            if i in changes:
                key, delta = changes[i]
                loads[key] += delta
            for s in range(shelves):
                samples = [
                    [round(loads[(s, p)] + rng.gauss(0, 1.5), 1) for _ in range(SAMPLES_PER_BATCH)]
                    for p in range(plates)
                ]
                payload = {"seq": i, "ts": 1_000 + 200 * i, "samples": samples}
                messages.append(
                    (weight_topic(cfg.store_id, f"shelf-{s}"), json.dumps(payload).encode())
                )
        done = 0
        rounds = 0
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            gateway.dispatcher.seq = SeqTracker()  # as if every shelf was reborn
            for topic, raw in messages:
                gateway.dispatcher.dispatch(topic, raw)
            done += len(messages)
            rounds += 1
        elapsed = time.perf_counter() - start
        events = gateway.store.event_count("unattributed_change")
        gateway.store.close()
    samples_per_s = done * plates * SAMPLES_PER_BATCH / elapsed
    return {
        "type": "bench_ingest",
        "shelves": shelves,
        "plates_per_shelf": plates,
        "messages": done,
        "seconds": round(elapsed, 2),
        "messages_per_s": round(done / elapsed),
        "samples_per_s": round(samples_per_s),
        "nanostore_multiple": round(samples_per_s / NANOSTORE_SAMPLES_PER_S, 2),
        "weight_events": events,
        "weight_events_expected": 4 * rounds,
        "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
