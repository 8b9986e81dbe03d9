"""Model artifact storage: one interface (``base``), one module per backend."""
