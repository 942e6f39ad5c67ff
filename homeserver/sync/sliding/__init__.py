"""Simplified sliding sync (MSC4186): ``POST /_matrix/client/unstable/org.matrix.simplified_msc3575/sync``.

``request`` validates the body, ``lists`` orders and filters the user's rooms, ``render`` builds room results,
``extensions`` fills to_device/e2ee/account_data/receipts/typing, ``connection`` holds what a connection has
already sent, ``handler`` runs the request (long-poll included). See docs/sliding-sync.md.
"""
