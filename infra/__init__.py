"""Interlock's AWS realisation: a CDK app built from ``interlock.topology`` and nothing else."""
