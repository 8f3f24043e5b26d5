"""The source kinds an import can read, by name (kurz.imports.sources.SourceKind).

Each source module makes its kind; this is the one place that lists them, so that
the CLI, the API and the web pages offer the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from kurz.imports import (
    bitly_api,
    bitly_csv,
    csv_file,
    kurz_file,
    kutt_api,
    kutt_db,
    shlink_api,
    shlink_csv,
    yourls,
)
from kurz.imports.sources import SourceKind

_KINDS: list[SourceKind] = [
    csv_file.KIND,
    kurz_file.KIND,
    bitly_csv.KIND,
    bitly_api.KIND,
    yourls.KIND,
    kutt_db.KIND,
    kutt_api.KIND,
    shlink_api.KIND,
    shlink_csv.KIND,
]

KINDS: Mapping[str, SourceKind] = MappingProxyType({kind.name: kind for kind in _KINDS})
