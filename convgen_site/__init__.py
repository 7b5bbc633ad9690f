"""Django project package for convgen; importing it loads the Celery app."""

from convgen_site.celery import app as celery_app

__all__ = ["celery_app"]
