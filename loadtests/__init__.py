"""Benchmarks of Celeriac, side by side with Celery 5 and Dramatiq (``python -m loadtests``).

Measured, never asserted: the figures go to docs/benchmarks.md with the command that
produced them (SPEC §10).
"""
