"""The single write path for room events (see event_persister.py)."""
