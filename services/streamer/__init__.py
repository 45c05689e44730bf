"""The Fargate market-data streamer: venue WebSockets into Redis quotes and books (imports desk only)."""
