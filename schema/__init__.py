"""The GraphQL API (Strawberry): types, queries, mutations and DataLoaders."""
