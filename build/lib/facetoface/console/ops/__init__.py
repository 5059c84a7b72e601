"""The operators' API, `/v1/ops/...`: what runs now, what happened, and two actions."""
