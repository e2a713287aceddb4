"""Workflows: the logic of each Step Functions task, one pydantic input and one output per step."""
