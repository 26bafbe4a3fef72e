"""The store gateway: MQTT ingest, checkout engine, SQLite store, API and dashboard."""
