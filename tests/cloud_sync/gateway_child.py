"""A gateway stand-in for the crash tests: writes receipts (each with its outbox row,
in one transaction) while its sender ships them; prints ``written N RECEIPT_ID`` after
each commit, then ``done``, and waits to be killed.

    python gateway_child.py DB HQ_URL STORE_ID API_KEY COUNT
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

from cloud_sync.sender import Sender, SenderConfig
from edge.store.repo import ReceiptRow, Store


def main() -> None:
    db, url, store_id, key, count = sys.argv[1:6]
    writer = Store.open(Path(db))
    sender = Sender(
        Store.open(Path(db)),
        SenderConfig(
            hq_url=url,
            store_id=store_id,
            api_key=key,
            batch_max_rows=10,
            batch_max_age_s=0.0,
            poll_s=0.01,
            heartbeat_s=3600,
            backoff_base_s=0.02,
            backoff_max_s=0.1,
        ),
    )
    sender.start()
    prefix = f"child-{os.getpid()}"
    for i in range(int(count)):
        token = f"{prefix}-{i}"
        writer.open_session(token, "gate-in", i)
        rid = writer.close_with_receipt(
            token, "gate-out", i, "EUR", [ReceiptRow("A", "a", 1 + i % 3, 199)]
        )
        sender.notify()
        print(f"written {i + 1} {rid}", flush=True)
    print("done", flush=True)
    threading.Event().wait()  # until SIGKILL


if __name__ == "__main__":
    main()
