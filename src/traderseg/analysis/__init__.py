"""Analyses over accounts and segments: profitability, events, migration, lifetime value."""
