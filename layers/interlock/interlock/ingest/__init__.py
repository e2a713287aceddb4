"""Webhook ingest: verify, normalise into an envelope, dedupe, record ``received``, queue."""
