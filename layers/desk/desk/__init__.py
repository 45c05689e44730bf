"""Lambda Desk's shared runtime: domain, events, stores, caches, venues and the local cloud."""
