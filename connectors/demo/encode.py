"""Plain generator records -> rows as the sources store them.

``*_enc`` columns are encrypted under the destination source's key with the cell address
(table, column, primary key) as associated data; ``person_ref`` and ``*_bidx`` columns become
blind indexes under the federation linkage key.

Rows for SQLite sources leave here as tuples already passed through the SQLite dialect's own
bind processors (dates to its text format, booleans to 0/1), in table column order: the
conversion then runs in the generator processes, and the single writing process only hands
finished tuples to ``executemany``. Rows for other databases stay dicts for ``insert()``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import LargeBinary
from sqlalchemy.dialects import sqlite

from connectors.demo.generator import Record
from connectors.sql.models import METADATA_BY_KIND
from security.crypto import BlindIndexer, FieldCipher, KeyRing

# Rows grouped for writing: source name -> table name -> rows (tuples for SQLite sources).
Rows = dict[str, dict[str, list]]
_SQLITE = sqlite.dialect()


@dataclass(frozen=True)
class _TableShape:
    primary_key: str
    encrypted: tuple[str, ...]
    blind: tuple[tuple[str, str], ...]  # (column, blind-index kind)
    columns: tuple[str, ...]
    sqlite_processors: tuple  # (column position, the dialect's bind processor), where one is


def _shapes() -> dict[str, _TableShape]:
    shapes = {}
    for metadata in METADATA_BY_KIND.values():
        for table in metadata.tables.values():
            pk, *rest = table.primary_key.columns
            names = [c.name for c in table.columns]
            # A ciphertext is bound to its row by one key column; a table with a composite key
            # (reference data such as code_labels) must hold nothing encrypted.
            assert not rest or not any(n.endswith("_enc") for n in names), table.name
            blind = [(n, "person_ref") for n in names if n == "person_ref"]
            blind += [(n, n.removesuffix("_bidx")) for n in names if n.endswith("_bidx")]
            processors = tuple(
                (position, process)
                for position, column in enumerate(table.columns)
                # bytes go to sqlite3 as they are; LargeBinary's processor only re-wraps them
                if not isinstance(column.type, LargeBinary)
                and (process := column.type.dialect_impl(_SQLITE).bind_processor(_SQLITE))
            )
            shapes[table.name] = _TableShape(
                pk.name,
                tuple(n for n in names if n.endswith("_enc")),
                tuple(blind),
                tuple(names),
                processors,
            )
    return shapes


class Encoder:
    """Encrypts and indexes records for the configured sources.

    ``destinations`` maps generator destinations (``bureau:330000``…) to configured source
    names; records for a destination that is not configured are dropped.
    """

    def __init__(
        self,
        keyring: KeyRing,
        destinations: dict[str, str],
        sqlite_sources: frozenset[str] = frozenset(),
    ) -> None:
        self._sqlite_sources = sqlite_sources
        self._cipher = FieldCipher(keyring)
        self._indexer = BlindIndexer(keyring)
        self._destinations = destinations
        self._shapes = _shapes()
        self._index_cache: dict[tuple[str, str], str] = {}

    def _blind(self, kind: str, value: str) -> str:
        # A person's records repeat the same few values; HMAC each once per batch.
        key = (kind, value)
        found = self._index_cache.get(key)
        if found is None:
            if kind == "person_ref":
                found = self._indexer.person_ref(value)
            elif kind == "id_number":
                found = self._indexer.id_number(value)
            else:
                found = self._indexer.phone(value)
            self._index_cache[key] = found
        return found

    def person_ref(self, id_number: str) -> str:
        """The pseudonym a record's plain ``person_ref`` (the ID number) is stored as."""
        return self._blind("person_ref", id_number)

    def encode(self, records: list[Record]) -> Rows:
        rows: Rows = defaultdict(lambda: defaultdict(list))
        encrypt = self._cipher.encrypt
        for destination, table, values in records:
            source = self._destinations.get(destination)
            if source is None:
                continue
            shape = self._shapes[table]
            row = dict(values)
            for column, kind in shape.blind:
                if row[column] is not None:
                    row[column] = self._blind(kind, row[column])
            if shape.encrypted:
                row_key = str(row[shape.primary_key])
                for column in shape.encrypted:
                    if row[column] is not None:
                        row[column] = encrypt(
                            row[column], source=source, table=table, column=column, row_key=row_key
                        )
            if source in self._sqlite_sources:
                stored = [row[c] for c in shape.columns]
                for position, process in shape.sqlite_processors:
                    if stored[position] is not None:
                        stored[position] = process(stored[position])
                rows[source][table].append(tuple(stored))
            else:
                rows[source][table].append(row)
        self._index_cache.clear()
        return {source: dict(tables) for source, tables in rows.items()}
