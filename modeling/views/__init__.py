"""Researcher pages of the modeling app: one module per kind of job, plus the dashboard."""
