"""De-identified extracts: producing one (produce) and writing its files (files)."""
