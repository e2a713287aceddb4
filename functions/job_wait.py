"""Worker for every workflow's waits for an external event: register the wait by its correlation key (and resume it
at once when its event came first)."""

from interlock.kit import Job
from interlock.kit.services import services
from interlock.kit.worker import handler as worker

handler = worker(Job.WAIT, lambda: services(Job.WAIT))
