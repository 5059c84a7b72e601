"""The user's own choices about the service: whether the mentor may remember earlier sessions."""
