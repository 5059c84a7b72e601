"""Tavus callbacks: authenticated, durable, idempotent ingestion into the right session."""
