"""One module per provider, each a :class:`~interlock.webhooks.base.WebhookSource`."""
