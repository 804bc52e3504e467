"""DreamRelay: a self-hosted relay gateway for asynchronous AI generation tasks."""

__version__ = "0.1.0"
