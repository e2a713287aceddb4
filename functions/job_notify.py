"""Worker for every workflow's notify steps: messages (Slack, email), each once (the idempotency ledger)."""

from interlock.kit import Job
from interlock.kit.services import services
from interlock.kit.worker import handler as worker

handler = worker(Job.NOTIFY, lambda: services(Job.NOTIFY))
