"""Smart-shelf plates: load-cell calibration applied by the gateway, and plate health."""
