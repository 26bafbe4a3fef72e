"""Simulated device firmware and the store simulator. Speaks only the wire protocol."""
