"""The staff side of the gateway: restock and cold-chain alerts, weight trace, metrics."""
