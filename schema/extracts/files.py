"""Writing an extract: Parquet (pyarrow, with a schema) or CSV, and its data dictionary."""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

# column -> (arrow type, catalogue class, description)
COLUMNS: dict[str, tuple[pa.DataType, str, str]] = {
    "pseudonym": (pa.string(), "identity", "The person, under a pseudonym of this partner's own."),
    "birth": (pa.string(), "identity", "Birth year or band (generalised)."),
    "gender": (pa.string(), "identity", "MALE, FEMALE, or * where generalised away."),
    "region": (pa.string(), "identity", "Insured place: city or province code (generalised)."),
    "period": (pa.string(), "visit", "Visit month, quarter or year (generalised)."),
    "visit_type": (pa.string(), "visit", "OUTPATIENT, INPATIENT, INTERNET_REVISIT, …"),
    "institution_level": (pa.string(), "visit", "Level of the treating institution."),
    "treatment_province": (pa.string(), "visit", "Province of the treating institution."),
    "diagnosis": (pa.string(), "diagnosis", "ICD-10 category of the first diagnosis (3 chars)."),
    "total_cost": (pa.float64(), "settlement", "Settled total in yuan, to 10 yuan."),
    "fund_payment": (pa.float64(), "settlement", "Paid by the pooled fund, yuan, to 10 yuan."),
    "drug_classes": (
        pa.string(),
        "prescription",
        "Drug classes prescribed (consented persons only), comma separated.",
    ),
}


def write(
    directory: Path,
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str],
    fmt: str,
    parameters: Mapping[str, Any],
) -> tuple[Path, str]:
    """Write the extract and ``dictionary.json`` beside it; (path, SHA-256 of the file)."""
    directory.mkdir(parents=True, exist_ok=True)
    if fmt == "parquet":
        path = directory / "extract.parquet"
        schema = pa.schema([(c, COLUMNS[c][0]) for c in columns])
        table = pa.Table.from_pylist([{c: r.get(c) for c in columns} for r in rows], schema)
        pq.write_table(table, path)
    else:
        path = directory / "extract.csv"
        with path.open("w", encoding="utf-8", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(columns), extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    dictionary = {
        "file": path.name,
        "sha256": digest,
        "columns": [
            {
                "name": c,
                "class": COLUMNS[c][1],
                "type": str(COLUMNS[c][0]),
                "description": COLUMNS[c][2],
            }
            for c in columns
        ],
        **parameters,
    }
    (directory / "dictionary.json").write_text(
        json.dumps(dictionary, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    return path, digest
