"""Model versions: ``v1.2.3`` semver (optional pre-release and build) or a date stamp
``vYYYYMMDD-HHMMSS``, and one comparable key that orders them by semver precedence.

The key is bytes, so SQL can sort by it (``ORDER BY version_order``) with plain bytewise
comparison on SQLite (BLOB) and PostgreSQL (bytea) alike: no collation can reorder it.
A date stamp orders as ``YYYYMMDD.HHMMSS.0``, i.e. after every ordinary ``vX.Y.Z`` with a
smaller major, which is what a team switching from semver to date stamps expects.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from aihub.errors import InvalidInput

_NUM = r"0|[1-9]\d*"
_IDENT = r"[0-9A-Za-z-]+"
_SEMVER = re.compile(
    rf"^v(?P<major>{_NUM})\.(?P<minor>{_NUM})\.(?P<patch>{_NUM})"
    rf"(?:-(?P<pre>{_IDENT}(?:\.{_IDENT})*))?"
    rf"(?:\+(?P<build>{_IDENT}(?:\.{_IDENT})*))?$"
)
_DATESTAMP = re.compile(r"^v(?P<date>\d{8})-(?P<time>\d{6})$")
_MAX_PART = 2**63 - 1
MAX_VERSION_LENGTH = 128


@dataclass(frozen=True, slots=True)
class Version:
    text: str
    order: bytes  # compare these: semver precedence, build metadata only breaks ties

    @property
    def key_segment(self) -> str:
        """The version as one object-key segment: ``+`` (build metadata) is not a name
        character, and ``_`` never occurs in semver, so the mapping is one-to-one."""
        return self.text.replace("+", "_")


def _invalid(text: object, why: str) -> InvalidInput:
    return InvalidInput(
        f"version: {text!r:.80} is not valid ({why}); use semver like 'v1.0.0', "
        "'v1.2.0-rc.1', 'v1.0.0+build.5' or a date stamp like 'v20241130-120000'"
    )


def _number(text: str, value: str) -> bytes:
    n = int(value)
    if n > _MAX_PART:
        raise _invalid(text, "number too large")
    return n.to_bytes(8, "big")


def parse_version(text: object) -> Version:
    """Validate ``text`` and build its order key; anything else is ``InvalidInput``."""
    if not isinstance(text, str) or not text or len(text) > MAX_VERSION_LENGTH:
        raise _invalid(text, "must be 1-128 characters")
    if m := _DATESTAMP.fullmatch(text):
        try:
            datetime.strptime(m["date"] + m["time"], "%Y%m%d%H%M%S")
        except ValueError as exc:
            raise _invalid(text, "not a real date and time") from exc
        core = _number(text, m["date"]) + _number(text, m["time"]) + _number(text, "0")
        return Version(text, core + b"\x02")
    m = _SEMVER.fullmatch(text)
    if m is None:
        raise _invalid(text, "not semver or a date stamp")
    core = b"".join(_number(text, m[p]) for p in ("major", "minor", "patch"))
    if m["pre"] is None:
        return Version(text, core + b"\x02" + _build(m["build"]))  # outranks pre-releases
    parts = []
    for ident in m["pre"].split("."):
        if ident.isdigit():
            if len(ident) > 1 and ident[0] == "0":
                raise _invalid(text, "numeric pre-release identifiers have no leading zeros")
            parts.append(b"\x02" + _number(text, ident))  # numbers rank below words
        else:
            parts.append(b"\x03" + ident.encode("ascii") + b"\x01")
    return Version(text, core + b"\x01" + b"".join(parts) + _build(m["build"]))


def _build(build: str | None) -> bytes:
    """Build metadata has no precedence in semver; appended after a byte lower than any
    other it only breaks ties, so the order is total and pagination is stable."""
    return b"" if build is None else b"\x00" + build.encode("ascii")

