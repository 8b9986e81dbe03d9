"""Documentation that is tested (sqlite-utils style): every CLI command is in the README,
and every endpoint the README lists exists in the app."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer

from aihub.api.app import create_app
from aihub.cli import app as cli_app

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def leaf_commands() -> list[str]:
    out: list[str] = []

    def walk(cmd: object, path: tuple[str, ...]) -> None:
        subs = getattr(cmd, "commands", None)  # a group (typer vendors click)
        if subs:
            for name, sub in subs.items():
                walk(sub, (*path, name))
        else:
            out.append(" ".join(path))

    walk(typer.main.get_command(cli_app), ())
    return sorted(out)


@pytest.mark.parametrize("command", leaf_commands())
def test_cli_command_is_documented_in_readme(command: str) -> None:
    assert re.search(rf"\baihub {re.escape(command)}\b", README), \
        f"'aihub {command}' is not documented in README.md"


def readme_endpoints() -> list[tuple[str, str]]:
    rows = re.findall(r"^\| ([A-Z/]+) \| `(/[^`]*)` \|", README, flags=re.M)
    out = []
    for methods, path in rows:
        for method in methods.split("/"):
            out.append((method, path.split("?")[0]))
    return out


def test_readme_lists_endpoints() -> None:
    assert ("POST", "/ai/features/get") in readme_endpoints()


@pytest.mark.parametrize(("method", "path"), readme_endpoints())
def test_readme_endpoint_exists(method: str, path: str) -> None:
    paths = create_app().openapi()["paths"]
    assert method.lower() in paths.get(path, {}), \
        f"README lists {method} {path}, the app has no such route"


def readme_cli_lines() -> list[str]:
    return [line.split("#")[0].strip() for line in README.splitlines()
            if line.startswith("aihub ")]


@pytest.mark.parametrize("line", readme_cli_lines())
def test_readme_cli_examples_use_real_options(line: str) -> None:
    cmd = typer.main.get_command(cli_app)
    words = line.split()[1:]
    while words and getattr(cmd, "commands", None) and words[0] in cmd.commands:  # type: ignore[attr-defined]
        cmd = cmd.commands[words.pop(0)]  # type: ignore[attr-defined]
    assert not getattr(cmd, "commands", None), f"'{line}' names no command"
    known = {opt for p in cmd.params for opt in (*p.opts, *p.secondary_opts)}
    used = {w.split("=")[0] for w in words if w.startswith("-")}
    assert used <= known, f"'{line}': unknown option(s) {sorted(used - known)}"
