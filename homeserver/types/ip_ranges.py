"""Address ranges outbound requests made on a user's behalf (push gateways, URL fetches, federation) may not reach
by default: loopback, private, link-local, shared, documentation, benchmarking, relay, multicast and reserved
space (IPv4 and IPv6). One list, so the config default and the HTTP client's own default can never drift apart."""

from __future__ import annotations

DEFAULT_BLOCKLIST: list[str] = [
    # IPv4
    "127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16", "0.0.0.0/8",
    "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24",
    "224.0.0.0/4", "240.0.0.0/4",
    # IPv6
    "::1/128", "::/128", "fe80::/10", "fec0::/10", "fc00::/7", "ff00::/8", "2001:db8::/32", "::ffff:0:0/96",
    "64:ff9b::/96", "100::/64", "2001::/23", "2002::/16",
]
