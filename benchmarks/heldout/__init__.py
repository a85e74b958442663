"""Held-out evaluation of K-CROSS on an independent simulator (see PROTOCOL.md)."""
