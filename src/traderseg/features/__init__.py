"""Declarative feature catalogue, compiled to Ibis and run on DuckDB."""
