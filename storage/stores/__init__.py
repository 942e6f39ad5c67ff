"""Per-area stores: each wraps the tables of one area behind async methods."""
