# `make api`: the API's resolver on http://127.0.0.1:8000/v1 (Swagger UI at /v1/swagger), with a local
# token printed at start. Needs PostgreSQL and Redis (DESK_DATABASE_URL / DESK_REDIS_URL).
# `make openapi` regenerates docs/openapi.json from the code.
.PHONY: api openapi

api: env
	$(PY) -m desk.local.api_server --host 127.0.0.1 --port 8000

openapi: env
	$(PY) -m desk.api.openapi docs/openapi.json
