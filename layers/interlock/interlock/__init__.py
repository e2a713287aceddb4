"""Interlock: event-driven AI workflow automation on AWS serverless."""

__version__ = "0.1.0"
