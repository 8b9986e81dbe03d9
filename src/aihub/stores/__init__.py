"""Storage backends, one folder per concern; each has ``base.py`` (the interface)."""
