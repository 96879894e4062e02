"""The deterministic synthetic demo: reference catalogues, the per-person generator, the
encoder that turns plain records into source rows, the batch writer, and ``demo show``.

Nothing here is real personal data; the codes (regions, LOINC, ICD-10) are real so the demo
exercises the same validation as production data would.
"""
