"""The HTTP service: API keys with roles, one store per venue, the API and the dashboard.

The core packages never import this one; it only translates HTTP to library calls.
"""

from traderseg.service.app import create_app
from traderseg.service.settings import ServiceSettings, VenueStore

__all__ = ["ServiceSettings", "VenueStore", "create_app"]
