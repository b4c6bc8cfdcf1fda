# Vantage developer entry points.
#   make build   cmake Release build into build/
#   make run     deps + build + local services (profile "run") + the node in the foreground
#   make test    deps + build + services (profile "test") + migrate + ctest + scenario replay
#   make bench   deps + build + services (profile "test") + test/bench/run.sh
#   make clean   remove build/ (service data in var/ is kept; `make distclean` drops it)
# Profiles have separate ports and data (var/run, var/test), so `make test`
# can run beside `make run`. See scripts/services.sh for the ports/env vars.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.ONESHELL:
.DEFAULT_GOAL := build

BUILD_DIR := build
NPROC := $(shell nproc 2>/dev/null || echo 2)
VANTAGE := $(BUILD_DIR)/vantage
SERVICES := scripts/services.sh

.PHONY: deps build run test bench clean distclean

deps:
	@echo "==> deps: checking Debian packages"
	scripts/deps.sh

build: deps
	@echo "==> build: cmake Release into $(BUILD_DIR)/ (-j$(NPROC))"
	cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=Release
	cmake --build $(BUILD_DIR) -j$(NPROC)
	echo "==> build: done ($(VANTAGE))"

run: build
	@already=0
	if $(SERVICES) status run >/dev/null 2>&1; then already=1; fi
	stop_services() {
	  if [[ $$already == 1 ]]; then
	    echo "==> run: services were already running before; leaving them up ($(SERVICES) stop run)"
	  else
	    echo "==> run: stopping services"
	    $(SERVICES) stop run || true
	  fi
	}
	node=
	signalled=0
	on_signal() {
	  signalled=1
	  echo
	  echo "==> run: stopping the node"
	  if [[ -n $$node ]]; then kill -TERM "$$node" 2>/dev/null || true; fi
	}
	trap on_signal INT TERM
	trap stop_services EXIT
	echo "==> run: starting services (profile run)"
	$(SERVICES) start run
	eval "$$($(SERVICES) env run)"
	echo
	echo "==> Vantage is starting at http://127.0.0.1:$$VANTAGE_HTTP_PORT/"
	echo "    dev JWT secret:"
	$(VANTAGE) token --print-secret 2>&1 | sed 's/^/      /' || echo "      (not available: $(VANTAGE) token --print-secret failed)"
	echo "    mint a token (in a shell with: eval \"\$$($(SERVICES) env run)\"):"
	echo "      $(VANTAGE) token --sub usr_demo --name \"Maya C.\""
	echo "    Kafka bootstrap servers: $$KAFKA_BOOTSTRAP_SERVERS"
	echo "    data: $$VANTAGE_DATA_DIR   Postgres: $$VANTAGE_DATABASE_URL   Redis: $$VANTAGE_REDIS_URL"
	echo "    press Ctrl-C to stop"
	echo
	$(VANTAGE) run &
	node=$$!
	# A trapped signal interrupts `wait` early: wait again for the node's own status.
	while :; do
	  signalled=0 rc=0
	  wait "$$node" || rc=$$?
	  [[ $$signalled == 1 ]] || break
	done
	echo "==> run: node exited ($$rc)"
	exit $$rc

test: build
	@trap 'echo "==> test: stopping test services"; $(SERVICES) stop test || true' EXIT
	echo "==> test: starting services (profile test)"
	$(SERVICES) start test
	$(SERVICES) fresh-database test
	eval "$$($(SERVICES) env test)"
	rc=0
	echo "==> test: $(VANTAGE) migrate --demo-catalog"
	$(VANTAGE) migrate --demo-catalog || rc=$$?
	if [[ $$rc == 0 ]]; then
	  echo "==> test: ctest"
	  ctest --test-dir $(BUILD_DIR) --output-on-failure || rc=$$?
	  echo "==> test: replaying scenarios"
	  shopt -s nullglob
	  scenarios=(scenarios/*.json)
	  if (( $${#scenarios[@]} )); then
	    $(VANTAGE) replay "$${scenarios[@]}" || { r=$$?; [[ $$rc != 0 ]] || rc=$$r; }
	  else
	    echo "    (no scenarios/*.json)"
	  fi
	fi
	if [[ $$rc == 0 ]]; then echo "==> test: PASSED"; else echo "==> test: FAILED (exit $$rc)"; fi
	exit $$rc

bench: build
	@trap 'echo "==> bench: stopping test services"; $(SERVICES) stop test || true' EXIT
	echo "==> bench: starting services (profile test)"
	$(SERVICES) start test
	$(SERVICES) fresh-database test
	eval "$$($(SERVICES) env test)"
	$(VANTAGE) migrate --demo-catalog
	if [[ -f test/bench/run.sh ]]; then
	  echo "==> bench: test/bench/run.sh"
	  bash test/bench/run.sh
	else
	  echo "==> bench: test/bench/run.sh does not exist yet; nothing to run"
	fi

clean:
	@echo "==> clean: removing $(BUILD_DIR)/"
	rm -rf $(BUILD_DIR)

distclean: clean
	@echo "==> distclean: stopping services and removing var/"
	$(SERVICES) stop test || true
	$(SERVICES) stop run || true
	rm -rf var
