"""Worker for every workflow's act steps: writes to systems of record, each once (the idempotency ledger)."""

from interlock.kit import Job
from interlock.kit.services import services
from interlock.kit.worker import handler as worker

handler = worker(Job.ACT, lambda: services(Job.ACT))
