"""Use cases. Each service owns its transaction boundaries and speaks domain objects."""
