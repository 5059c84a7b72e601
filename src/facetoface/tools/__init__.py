"""The mentor acts on what was said, in the open: Tavus tools and the post-call report
(`service`), the goal-change log the user reads and undoes (`change_log`), and the memory the
user reads and forgets (`memory`). Tavus's deliveries are authenticated by their HMAC
signature (`signature`); every change is written as the session's user, and recorded in one
place (`recording`).
"""
