"""Version rule: semver (pre-release, build) and date stamps, ordered by semver."""

from __future__ import annotations

import random

import pytest

from aihub.errors import InvalidInput
from aihub.versions import parse_version

ORDERED = [
    "v0.9.0",
    "v1.0.0-alpha",
    "v1.0.0-alpha.1",
    "v1.0.0-alpha.beta",
    "v1.0.0-beta",
    "v1.0.0-beta.2",
    "v1.0.0-beta.11",
    "v1.0.0-rc.1",
    "v1.0.0",
    "v1.0.0+build.1",
    "v1.2.0",
    "v1.10.0",
    "v2.0.0",
    "v20241130-120000",
    "v20241130-120001",
    "v20241201-000000",
]


def test_semver_precedence_including_date_stamps() -> None:
    shuffled = ORDERED[:]
    random.Random(3).shuffle(shuffled)
    assert sorted(shuffled, key=lambda v: parse_version(v).order) == ORDERED


@pytest.mark.parametrize("bad", [
    "1.0.0", "v1.0", "v1", "v01.0.0", "v1.0.0-01", "V1.0.0", "v1.0.0-", "v1.0.0+",
    "latest", "", "v20241332-120000", "v20241130-250000", "v1.0.0/../x", "v1.0.0 ",
    "v" + "1" * 30 + ".0.0", "production",
])
def test_invalid_versions_refused(bad: str) -> None:
    with pytest.raises(InvalidInput, match="version"):
        parse_version(bad)


def test_key_segment_is_a_valid_name() -> None:
    assert parse_version("v1.0.0+exp.sha.5114f85").key_segment == "v1.0.0_exp.sha.5114f85"
