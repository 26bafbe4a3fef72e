"""The shopper side of the gateway: check-in tokens, guidance, orders and payments."""
