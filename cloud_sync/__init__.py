"""Store-and-forward to HQ and down-sync (issue 5)."""
