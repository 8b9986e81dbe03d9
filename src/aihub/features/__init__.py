"""Feature definitions (``catalog``) and the one pipeline that computes them (``compute``)."""
