"""Worker for every workflow's query steps: connector reads (a CRM lookup, an enrichment)."""

from interlock.kit import Job
from interlock.kit.services import services
from interlock.kit.worker import handler as worker

handler = worker(Job.QUERY, lambda: services(Job.QUERY))
