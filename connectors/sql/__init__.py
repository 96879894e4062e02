"""Sources that are SQL databases (SQLite files in the demo, PostgreSQL in production)."""
