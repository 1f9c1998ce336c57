# orderstream — make help lists the targets.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

MODULES  := pkg schema e2e k8s/validate k8s/images k8s/observability $(sort $(wildcard services/*))
PKGS     := $(foreach m,$(MODULES),./$(m)/...)
SERVICES := $(filter-out schema-migrator,$(notdir $(wildcard services/*)))
TOOLS    := $(CURDIR)/.cache/bin
export PATH := $(TOOLS):$(PATH)
export GOFLAGS ?= -buildvcs=false

TEST_TIMEOUT ?= 25m
FAULT_TIMEOUT ?= 45m
# The fault tests stop and start the shared Kafka and Cassandra and load
# the machine, so they run alone, one package at a time, after the rest.
FAULT_PKGS := ./pkg/projector/ ./services/cdc-relay/... ./services/projector-order-read-model/... ./e2e/...
TEST_FLAGS   ?= -race

.PHONY: help
help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z0-9-]+:.*## / {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# OTEL=1: make up also starts a local OpenTelemetry Collector
# (scripts/otel-collector.sh) and points every service's traces at it.
OTEL ?= 0

.PHONY: up
up: infra-up migrate build ## bring everything up locally: stack, schema, all services, then a demo (OTEL=1: and a local OpenTelemetry Collector receiving their traces)
	$(if $(filter 1,$(OTEL)),scripts/otel-collector.sh start)
	$(if $(filter 1,$(OTEL)),ORDERSTREAM_TRACING_ENDPOINT=127.0.0.1:4317) scripts/services.sh start
	scripts/demo.sh

.PHONY: down
down: ## stop every service, the collector and the stack that `make up` started
	scripts/services.sh stop
	scripts/otel-collector.sh stop
	scripts/stack.sh down

.PHONY: infra-up up-infra
infra-up up-infra: ## start Apache Cassandra and Apache Kafka (fetched from Maven Central on first use)
	scripts/stack.sh up

.PHONY: infra-down down-infra
infra-down down-infra: ## stop Cassandra and Kafka (data is kept; scripts/stack.sh reset drops it)
	scripts/stack.sh down

.PHONY: status
status: ## show what is running
	-scripts/stack.sh status
	-scripts/services.sh status

.PHONY: migrate
migrate: ## apply schema/ to the local keyspace
	go run ./services/schema-migrator

.PHONY: build
build: ## build every service binary into bin/
	@mkdir -p bin
	for s in $(SERVICES) schema-migrator; do go build -o bin/$$s ./services/$$s; done

.PHONY: tools
tools: ## install the tools make test uses into .cache/bin (Go linters; helm and ko from source; promtool from Debian); skaffold is built by the targets that run it
	scripts/tools.sh
	scripts/install-k8s-tools.sh ko helm promtool

.PHONY: test
test: tools infra-up check-generated lint ## unit and integration tests of every module against the real stack, lint, generated files, the Kubernetes delivery offline (about 10 min warm)
	CHECK_DEPLOY_GO_TEST=0 CHECK_DEPLOY_SKAFFOLD=0 scripts/check-deploy.sh
	scripts/test.sh $(TEST_TIMEOUT) $(TEST_FLAGS) $(PKGS)

.PHONY: test-fault
test-fault: tools infra-up ## the fault and load tests: SIGKILL and stop services, Kafka and Cassandra under load (they stop shared servers, so one package at a time)
	scripts/test.sh $(FAULT_TIMEOUT) -p 1 -tags fault -run Fault $(FAULT_PKGS)

.PHONY: test-unit
test-unit: ## only the tests that need no server (integration tests skip without the stack)
	go test -short $(PKGS)

.PHONY: lint
lint: tools ## gofmt, go vet, staticcheck, buf lint and buf breaking against main
	@bad=$$(gofmt -l $(MODULES) | grep -v '^pkg/gen/' || true); if [ -n "$$bad" ]; then echo "gofmt would change:"; echo "$$bad"; exit 1; fi
	go vet $(PKGS)
	staticcheck $(PKGS)
	go vet -tags fault $(FAULT_PKGS)
	cd proto && buf lint
	scripts/buf-breaking.sh

.PHONY: generate
generate: tools ## regenerate the Go code of proto/ into pkg/gen
	cd proto && buf generate

.PHONY: tidy
tidy: ## go mod tidy in every module, then sync the workspace
	for m in $(MODULES); do (cd $$m && GOWORK=off go mod tidy); done
	go work sync

.PHONY: check-generated
check-generated: tools ## fail if go.mod/go.sum are not tidy or pkg/gen is stale
	scripts/check-generated.sh $(MODULES)

.PHONY: bench
bench: infra-up ## benchmarks against the real stack, printed as tables with ratios to a bare baseline
	go run ./pkg/cmd/storebench
	go run ./pkg/cmd/relaybench
	go run ./pkg/cmd/projbench
	go test -p 1 -run '^$$' -bench . -benchtime 1x -timeout 20m ./services/command-service/ ./services/query-service/
	$(MAKE) bench-rebuild
	$(MAKE) bench-e2e

.PHONY: bench-rebuild
bench-rebuild: infra-up ## each view rebuilt into a new generation at 100,000 aggregates, beside truncate and replay (about 35 min on 2 shared cores); projbench's 10,000-aggregate rebuild is in make bench too
	go run ./pkg/cmd/projbench -rebuild-only -aggregates 100000 -commands 200000

.PHONY: clean
clean: ## remove build output (not the stack's data or caches)
	rm -rf bin

.PHONY: bench-e2e
bench-e2e: infra-up migrate build ## end-to-end efficiency at 4 and 16 clients against the system ((re)started from the fresh build; `make down` stops it): commands/s, CPU per command of every process, idle CPU, commit→record and commit→read model, three variants side by side: the baseline (hints off), hints on, and hints on with the auditors off (E2E_FLAGS='-variants hints' for one); rewrites its section of docs/benchmarks.md, and leaves CPU profiles of the Go services at 16 clients in .run/profiles (about 12 min; a quick check: E2E_FLAGS='-duration 10s -idle 10s -settle-min 10s -settle-max 20s')
	scripts/services.sh restart
	go run ./pkg/cmd/e2ebench -markdown docs/benchmarks.md -profile .run/profiles $(E2E_FLAGS)

.PHONY: check-charts
check-charts: ## helm lint and template every chart with its ci values, strict decoding, golden files (builds the pinned helm once)
	scripts/install-helm.sh
	go test -count=1 ./k8s/validate/...

.PHONY: images
images: ## build every service image with ko, offline, as an OCI tarball in .cache/images (base image built from k8s/images)
	scripts/images.sh

.PHONY: check-deploy
check-deploy: infra-up ## images build and run, skaffold diagnose/render, dashboards and alert rules (promtool) against the services' metrics
	scripts/check-deploy.sh

.PHONY: cluster-up
cluster-up: ## a real one-node Kubernetes cluster on this machine (built once into .cache/cluster; docs/deploy.md "Try it in a local cluster"); prints the kubeconfig
	scripts/cluster.sh up

.PHONY: cluster-down
cluster-down: ## stop the local cluster: every process it started, its network namespace, veth and cgroups
	scripts/cluster.sh down

.PHONY: test-cluster
test-cluster: infra-up ## helm install, the demo through the Gateway, rolling upgrade and pods killed under load, Prometheus, helm uninstall, in the local cluster
	scripts/cluster/test.sh
