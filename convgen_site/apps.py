from django.apps import AppConfig


class ConvgenSiteConfig(AppConfig):
    name = "convgen_site"
    verbose_name = "convgen"
