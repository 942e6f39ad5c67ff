"""Load benchmarks for any Matrix homeserver over the plain Client-Server API.

Run ``python3 -m bench --url http://127.0.0.1:8008 [--quick]``; see docs/performance.md.
"""
