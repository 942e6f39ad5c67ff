"""EDUs over federation: the inbound dispatcher and one module per EDU family (to-device, typing, receipts, ...)."""
