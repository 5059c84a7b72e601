"""The conversation core that sessions, callbacks and the reconciler share.

A conversation is one Tavus conversation and its session rows (`mentor_conversations` +
`daily_sessions`). This package holds what every feature needs to know about one: its status
and outcome enums (`status`), its facts and the pure merges that change them (`state`), what a
Tavus event contributes (`events`), the callback token (`tokens`), text PostgreSQL can store
(`storable`), and the one place its rows are locked and written (`repository`, `service`).

It depends on `models` and `db` only; no feature module may be imported from here
(`tests/test_architecture.py` holds the contract). Keep this file free of imports so that
`models` can import the enums in `status` without a cycle.
"""
