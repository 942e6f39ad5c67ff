"""Inbound federation transport: X-Matrix authentication, the federation route helper, server ACLs."""
