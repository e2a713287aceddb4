"""Worker for every workflow's decide steps: the AI decision points: the only worker that reads the model key."""

from interlock.kit import Job
from interlock.kit.services import services
from interlock.kit.worker import handler as worker
from interlock.settings import AiSettings, load

load(AiSettings)  # a bad setting fails the cold start, not the first decision

handler = worker(Job.DECIDE, lambda: services(Job.DECIDE))
