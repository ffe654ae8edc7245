"""The chat site's Django project: settings and wiring."""
