"""The local cloud: real market data, local servers, moto, handler dispatch and the demo."""
