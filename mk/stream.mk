# `make stream`: the streamer locally against the replay. `--replay` starts the fake Binance venue
# in-process (replaying ../shared/data/ticks captures, looping) and points the ccxt.pro feeds at it;
# quotes and books go to REDIS_URL (default: the local Redis, redis://127.0.0.1:6379/0).
# /health and /ready on http://127.0.0.1:$(STREAM_HEALTH_PORT); Ctrl-C (SIGINT) drains and exits 0.
# STREAM_ARGS adds options, e.g. `make stream STREAM_ARGS="--config my.json --speed 4"`.
.PHONY: stream

REDIS_URL ?= redis://127.0.0.1:6379/0
STREAM_HEALTH_PORT ?= 8080
STREAM_ARGS ?=

stream: env
	PYTHONPATH=services $(PY) -m streamer --replay --redis-url "$(REDIS_URL)" \
		--health-port $(STREAM_HEALTH_PORT) $(STREAM_ARGS)
