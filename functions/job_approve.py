"""Worker for every workflow's approve steps: the wait's task, a hashed one-time link emailed to the approver."""

from interlock.kit import Job
from interlock.kit.services import services
from interlock.kit.worker import handler as worker
from interlock.wiring import approval_request_settings

approval_request_settings()  # a bad approval setting (a link shorter than the wait) fails the cold start

handler = worker(Job.APPROVE, lambda: services(Job.APPROVE))
