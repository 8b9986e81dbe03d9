"""``aihub keys create|list|revoke``: API keys, on the configured database.

The CLI works on the database with the operator's own credentials; the keys it makes are
for HTTP callers (``aihub.Client(api_key=...)``, ``AIHUB_API_KEY``, curl).
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from aihub.cli.app import app, console, err_console, services
from aihub.timeutil import iso

keys_app = typer.Typer(help="API keys: tenant-scoped, with a role (read, write, admin).",
                       no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@keys_app.command("create")
def create(
    tenant: Annotated[list[str], typer.Option("--tenant", "-t",
                                              help="Tenant the key reaches (repeat; '*' = all)")],
    role: Annotated[str, typer.Option("--role", "-r", help="read, write or admin")] = "read",
    description: Annotated[str, typer.Option("--description", "-d")] = "",
) -> None:
    """Create a key and print it once: only its sha256 is stored."""
    with services() as svc:
        key, plain = svc.api_keys.create(tenant, role, description)
    err_console.print(f"key {key.key_id}: role {key.role}, tenants {', '.join(key.tenants)}. "
                      "Store it now; it is not shown again.")
    console.print(plain, soft_wrap=True, highlight=False)


@keys_app.command("list")
def list_keys() -> None:
    """Every key (never the key itself): id, tenants, role, created, revoked."""
    with services() as svc:
        keys = svc.api_keys.list()
    table = Table(title=f"API keys ({len(keys)})")
    for col in ("key_id", "tenants", "role", "created", "revoked", "description"):
        table.add_column(col, overflow="fold")
    for k in keys:
        table.add_row(k.key_id, ",".join(k.tenants), k.role, iso(k.created_at),
                      iso(k.revoked_at) if k.revoked_at else "-", k.description)
    console.print(table)


@keys_app.command("revoke")
def revoke(key_id: Annotated[str, typer.Argument(help="the key_id shown by 'keys list'")]) -> None:
    """Revoke a key. Servers stop accepting it within AIHUB_API_KEY_CACHE_TTL seconds."""
    with services() as svc:
        key = svc.api_keys.revoke(key_id)
        ttl = svc.settings.api_key_cache_ttl
    console.print(f"revoked {key.key_id} (servers refuse it within {ttl:g} s)")
