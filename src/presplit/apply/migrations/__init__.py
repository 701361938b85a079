"""Alembic migrations of the journal (run programmatically by presplit.apply.journal)."""
