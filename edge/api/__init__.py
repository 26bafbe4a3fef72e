"""The gateway's HTTP API (FastAPI) and its first HTML page."""
