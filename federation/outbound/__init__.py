"""Outbound federation: per-destination queues (sender.py), EDU producers."""
