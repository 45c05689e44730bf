"""One Powertools ``Router`` per service area, mounted under ``/v1`` by :mod:`desk.api.app`."""
