"""Statistics pushed down to the sources: per-source partial aggregates in SQL, merged here."""
