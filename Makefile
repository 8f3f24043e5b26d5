# One command per task; the same commands locally and in CI.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# kurz alone (make run), then with every extra and the dev tools (tests, checks, benches).
RUNTIME := $(VENV)/.runtime
STAMP  := $(VENV)/.installed
# Every install pinned to what was tested (make constraints writes it).
PIP    := $(BIN)/python -m pip install --quiet -c constraints.txt

.DEFAULT_GOAL := help
.PHONY: help run test check fmt proto constraints bench bench-startup bench-ratelimit bench-idempotency bench-cache bench-hitratio bench-ring bench-scale bench-tiers bench-jobs bench-clicks bench-record bench-stats bench-cost bench-head bench-servers bench-auth bench-geo bench-targeted bench-grpc bench-web bench-settled lab lab-locking lab-indexing lab-isolation lab-cap clean clean-data bench-search bench-export bench-batch bench-import bench-metrics bench-tracing bench-webhooks

help: ## Show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

$(RUNTIME): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "kurz needs Python 3.11 or newer (set PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	@echo "installing kurz into $(VENV) (runtime only, pinned by constraints.txt)"
	$(PIP) -e .
	@touch $@

$(STAMP): $(RUNTIME)
	@echo "installing kurz[dev] into $(VENV): every extra and the dev tools"
	$(PIP) -e '.[dev]'
	@touch $@

constraints: $(STAMP) ## Pin what kurz[dev] needs, as installed in .venv, into constraints.txt
	$(BIN)/python -m tools.constraints

run: $(RUNTIME) ## Install (runtime only), migrate and serve on http://127.0.0.1:8080 (SQLite under ./var/)
	$(BIN)/kurz migrate
	$(BIN)/kurz serve

test: $(STAMP) ## Run the whole test suite (PostgreSQL tests skip unless it answers; CI=true fails instead)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

check: $(STAMP) ## Lint, format check, mypy --strict, and the import layers (import-linter)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

proto: $(STAMP) ## Generate kurz.grpc's code from src/kurz/grpc/kurz/v1/links.proto (commit the result)
	$(BIN)/python -m grpc_tools.protoc -I src -I "$$($(BIN)/python -c 'import google.rpc, pathlib; print(pathlib.Path(google.rpc.__path__[0]).parents[1])')" \
		--python_out=src --pyi_out=src --grpc_python_out=src src/kurz/grpc/kurz/v1/links.proto

fmt: $(STAMP) ## Format and fix what ruff can
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP) ## Redirects (kurz, with its rate limit, with L2 only, a bare ASGI app; wrk), then bench-ratelimit and bench-idempotency
	$(BIN)/python -m bench.redirect --tiers
	$(BIN)/python -m bench.ratelimit
	$(BIN)/python -m bench.idempotency

bench-ratelimit: $(STAMP) ## Rate-limit checks/s and Redis round trips: kurz vs the limits library
	$(BIN)/python -m bench.ratelimit

bench-idempotency: $(STAMP) ## Keyed against unkeyed POSTs (Idempotency-Key), SQLite and PostgreSQL
	$(BIN)/python -m bench.idempotency

bench-cache: $(STAMP) ## kurz.cache.LRUCache against functools, cachetools and lru-dict (time, then instructions)
	$(BIN)/python -m bench.cache
	$(BIN)/python -m bench.cache_instructions

bench-hitratio: $(STAMP) ## Hit ratios of LRU and LRU+TinyLFU on Zipf and scan-polluted workloads
	$(BIN)/python -m bench.hitratio

bench-ring: $(STAMP) ## The consistent-hash ring: balance, keys moved, bounded loads, lookups/s vs uhashring
	$(BIN)/python -m bench.ring

bench-scale: $(STAMP) ## Zipf traffic over 10^6..10^9 links: L1/L2 hit ratios and SQL reads/s by cache size
	$(BIN)/python -m bench.scale

bench-tiers: $(STAMP) ## CPU per redirect by the tier that answers it (L1, L2, SQL), in process
	$(BIN)/python -m bench.tier_cost

bench-jobs: $(STAMP) ## Jobs/s (enqueue, end to end) on SQLite and PostgreSQL, and enqueue-to-start latency, vs procrastinate
	$(BIN)/python -m bench.jobs

bench-clicks: $(STAMP) ## kurz as installed (clicks, limit) against lean kurz and the bare app at 64 and 256 connections, over several L1 lifetimes (about 35 min)
	$(BIN)/python -m bench.clicks

bench-record: $(STAMP) ## CPU per click recorded (ClickStore.record), by batch size and visitors, SQLite and PostgreSQL
	$(BIN)/python -m bench.record_cost

bench-stats: $(STAMP) ## Stats API queries for a link with 10 million clicks over 90 days, SQLite and PostgreSQL
	$(BIN)/python -m bench.stats_query

bench-cost: $(STAMP) ## What the redirect limiter, the head limits, targeting rules and recording a click cost in CPU instructions (callgrind; needs valgrind)
	$(BIN)/python -m bench.redirect_cost
	$(BIN)/python -m bench.rule_instructions
	$(BIN)/python -m bench.record_instructions

bench-head: $(STAMP) ## Oversize and trickled request heads against kurz serve: /healthz latency, memory, connections held
	$(BIN)/python -m bench.head_flood

bench-grpc: $(STAMP) ## gRPC ResolveLink calls/s and server CPU per call beside GET /{code} (wrk), one kurz serve
	$(BIN)/python -m bench.grpc_resolve

lab: lab-locking lab-indexing lab-isolation lab-cap ## All four experiments behind docs/lab/, each writing its page's tables

lab-locking: $(STAMP) ## Optimistic, pessimistic and atomic updates of a contended counter, SQLite and PostgreSQL (docs/lab/locking.md)
	$(BIN)/python -m bench.lab.locking --write

lab-indexing: $(STAMP) ## Insert cost and size by number of indexes; kurz's queries with and without theirs (docs/lab/indexing.md)
	$(BIN)/python -m bench.lab.indexing --write

lab-isolation: $(STAMP) ## Lost updates and write skew by isolation level, PostgreSQL and SQLite (docs/lab/isolation.md)
	$(BIN)/python -m bench.lab.isolation --write

lab-cap: $(STAMP) ## Stop each dependency under a running kurz: what keeps working, how it fails, recovery (docs/lab/cap.md)
	$(BIN)/python -m bench.lab.cap --write

bench-geo: $(STAMP) ## A country lookup in the shipped IP data, and what countries add to a new visitor's click (derived and recorded)
	$(BIN)/python -m bench.geo

bench-targeted: $(STAMP) ## Cached links with 8 targeting rules and 2 variants against plain links and the bare app (wrk; goal >= 0.5 of bare)
	$(BIN)/python -m bench.targeted

bench-auth: $(STAMP) ## GET /api/v1/links/{code} with an API key against with a session cookie, SQLite and PostgreSQL
	$(BIN)/python -m bench.auth

bench-webhooks: $(STAMP) ## Webhooks on a simulated clock (SQLite): statements per change by webhooks registered, attempt times through the worker, outages a delivery survives (ADR 0021)
	$(BIN)/python -m bench.webhooks

bench-settled: $(STAMP) ## A busy link's stats: first view, the day after and again, against summing every row (ADR 0020)
	$(BIN)/python -m bench.settled

bench-web: $(STAMP) ## CPU per render of the web app's pages for a user with 1,000 links and 90 days of clicks, SQLite and PostgreSQL
	$(BIN)/python -m bench.web_pages

bench-metrics: $(STAMP) ## CPU per /metrics scrape (render alone, and the whole GET), SQLite and PostgreSQL
	$(BIN)/python -m bench.metrics_scrape

bench-tracing: $(STAMP) ## CPU per API request and cached redirect with traces on (OTLP encoded), sampled out and off, SQLite and PostgreSQL
	$(BIN)/python -m bench.tracing

bench-search: $(STAMP) ## Searches over 100,000 links, SQLite and PostgreSQL: the trigram indexes against scanning (goal < 50 ms)
	$(BIN)/python -m bench.search

bench-export: $(STAMP) ## Exporting 100,000 links with their statistics (CLI and API, SQLite and PostgreSQL): rate, and peak memory at 10,000 and 100,000 links
	$(BIN)/python -m bench.export

bench-import: $(STAMP) ## Importing 100,000 CSV rows with kurz import (SQLite and PostgreSQL): rate, and peak memory at 10,000 and 100,000 rows
	$(BIN)/python -m bench.imports

bench-batch: $(STAMP) ## Links/s made one by one against in batches of 1,000 (goal >= 20x), and by links per transaction, SQLite and PostgreSQL
	$(BIN)/python -m bench.batch

bench-startup: $(STAMP) ## CPU of kurz --help and of kurz serve until ready; install size by extra (fresh venvs)
	$(BIN)/python -m bench.startup --sizes

bench-servers: $(STAMP) ## Compare ASGI servers (uvicorn, granian) on the bare app and on kurz
	$(BIN)/python -m bench.redirect --servers uvicorn,granian --no-record

clean: ## Remove the virtual environment and caches (keeps var/, the local data: see clean-data)
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
	find . -name __pycache__ -type d -prune -not -path './var/*' -exec rm -rf {} +

clean-data: ## Delete var/ (every link, key and click of the local SQLite kurz), after asking (CONFIRM=yes: no question)
	@if [ ! -e var ]; then echo "no var/ here: nothing to delete"; exit 0; fi; \
	if [ "$(CONFIRM)" != yes ]; then \
		if [ ! -t 0 ]; then echo "make clean-data deletes var/ with every link in it: run it on a terminal, or with CONFIRM=yes"; exit 2; fi; \
		printf 'Delete var/ (%s), with every link, key and click in it? Type yes: ' "$$(du -sh var | cut -f1)"; \
		read answer; [ "$$answer" = yes ] || { echo "kept var/"; exit 1; }; \
	fi; \
	rm -rf var && echo "deleted var/"
