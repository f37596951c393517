"""PayChanServer: the client-facing RBPCP server (v1, v2-seed, v2.3.0 routes)."""
