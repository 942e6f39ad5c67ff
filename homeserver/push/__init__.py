"""Push notifications: push rules (defaults, evaluation), unread counts, pushers (see docs/push.md)."""
