"""One module per stream, each a :class:`homeserver.sync.result.StreamProvider`."""
