"""Metadata stores (feature sets, export records, model registry) on the SQL database."""
