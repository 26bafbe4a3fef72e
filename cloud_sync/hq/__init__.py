"""HQ: ingest from every store's gateway, the fleet's health, transactions, stock across stores.

Start it with ``storeedge hq --db PATH --port N``; see :mod:`cloud_sync.hq.app`.
"""
