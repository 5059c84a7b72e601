"""Logging, request correlation and (later) metrics."""
