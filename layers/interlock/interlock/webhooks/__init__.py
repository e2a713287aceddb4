"""Webhook signature schemes, each verified over the raw body bytes before anything is parsed."""
