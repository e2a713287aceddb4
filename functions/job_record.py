"""Worker for every workflow's record steps: outcomes that are no step's success (failed, rejected, ...)."""

from interlock.kit import Job
from interlock.kit.services import services
from interlock.kit.worker import handler as worker

handler = worker(Job.RECORD, lambda: services(Job.RECORD))
