"""Seed-compatible endpoint (being written)."""

route_handlers: list = []
