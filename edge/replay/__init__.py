"""Replays of labelled and synthetic shopping cases through the live gateway code."""
