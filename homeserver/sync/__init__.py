"""Sync: stream tokens, filters, the sync handler and one provider per stream."""
