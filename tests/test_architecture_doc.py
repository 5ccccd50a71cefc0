"""docs/architecture.md names only files, classes and methods that exist, so the path of one event
it draws stays the path the code takes."""

from __future__ import annotations

import re

from tests.conftest import REPO

DOC = (REPO / "docs" / "architecture.md").read_text()
SOURCES = [p for top in ("bot", "strategies", "connectors") for p in (REPO / top).rglob("*.py")]


def test_every_file_the_doc_names_exists() -> None:
    named = set(re.findall(r"`((?:bot|strategies|connectors)/[\w/]+\.py)`", DOC))
    assert len(named) >= 30
    assert sorted(p for p in named if not (REPO / p).is_file()) == []


def test_every_class_method_the_doc_names_is_defined_in_that_class() -> None:
    named = set(re.findall(r"`([A-Z]\w*)\.(\w+)`", DOC))
    assert ("SimOrderVenue", "submit_order") in named
    missing = []
    for cls, method in sorted(named):
        bodies = [
            m.group(1)
            for path in SOURCES
            for m in re.finditer(
                rf"^class {cls}\b.*?:\n((?:\n|    .*\n)*)", path.read_text(), re.MULTILINE
            )
        ]
        if not any(
            re.search(rf"^    (?:async )?def {method}\(", body, re.MULTILINE) for body in bodies
        ):
            missing.append(f"{cls}.{method}")
    assert missing == []


def test_the_doc_names_the_shared_simulated_venue_not_a_method_that_does_not_exist() -> None:
    assert "SimExchange.submit_order" not in DOC
    assert "`SimOrderVenue.submit_order` (`connectors/sim/venue.py`" in DOC
