"""Connectors to systems of record, each behind a small interface with an httpx adapter: the CRM (triage's account
lookup and HubSpot's CRM v3 objects), the helpdesk, company enrichment and Slack. Each keeps one ``httpx.Client``
(:mod:`interlock.connectors.http`); each module's ``from_settings()`` builds it once per process."""
