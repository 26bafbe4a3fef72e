"""Checkout: weight events, product inference, carts and receipts."""
