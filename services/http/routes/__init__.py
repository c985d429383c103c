"""The HTTP routes, one module per resource; each parses a schema and calls one use case."""
