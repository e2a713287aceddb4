"""Worker for every workflow's validate steps: extract and check by deterministic rules (no I/O)."""

from interlock.kit import Job
from interlock.kit.services import services
from interlock.kit.worker import handler as worker

handler = worker(Job.VALIDATE, lambda: services(Job.VALIDATE))
