"""The API's object types, one module per domain area."""
