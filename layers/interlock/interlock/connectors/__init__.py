"""Connectors to systems of record, each behind a small interface with an httpx adapter."""
