"""The sources: SQL databases and remote peers, and how requests fan out to them."""
