"""The desk's stacks: network, data, pipeline, trading, api, streaming, monitoring."""
