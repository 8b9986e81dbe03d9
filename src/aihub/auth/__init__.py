"""API keys and tenant scoping.

``keys`` stores keys (only their sha256), ``cache`` verifies them with a short-TTL in-memory
cache, ``scope`` holds the calling key's tenants for the current request and is the one
tenant check every route and service uses (``check_tenant``, ``visible_tenants``).
"""
