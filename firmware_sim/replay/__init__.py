"""Replay of labelled shopping cases as the device messages a real store would send."""
