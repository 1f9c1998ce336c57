# orderstream — make help lists the targets.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

MODULES  := pkg schema $(sort $(wildcard services/*))
PKGS     := $(foreach m,$(MODULES),./$(m)/...)
SERVICES := $(filter-out schema-migrator,$(notdir $(wildcard services/*)))
TOOLS    := $(CURDIR)/.cache/bin
export PATH := $(TOOLS):$(PATH)
export GOFLAGS ?= -buildvcs=false

TEST_TIMEOUT ?= 25m
TEST_FLAGS   ?= -race

.PHONY: help
help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: up
up: infra-up migrate build ## bring everything up locally: stack, schema, all services, then a demo
	scripts/services.sh start
	scripts/demo.sh

.PHONY: down
down: ## stop every service and the stack that `make up` started
	scripts/services.sh stop
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
tools: ## install the Go tools the checks use into .cache/bin
	scripts/tools.sh

.PHONY: test
test: tools infra-up check-generated lint ## unit and integration tests of every module against the real stack, lint, generated files
	scripts/test.sh $(TEST_TIMEOUT) $(TEST_FLAGS) $(PKGS)
	@echo "fault tests (they stop shared servers, so they run alone):"
	scripts/test.sh $(TEST_TIMEOUT) -p 1 -tags fault -run Fault ./services/cdc-relay/... ./services/projector-order-read-model/...

.PHONY: test-fault
test-fault: tools infra-up ## only the fault tests (stop and start Kafka under load)
	scripts/test.sh $(TEST_TIMEOUT) -p 1 -tags fault -run Fault ./services/cdc-relay/... ./services/projector-order-read-model/...

.PHONY: test-unit
test-unit: ## only the tests that need no server (integration tests skip without the stack)
	go test -short $(PKGS)

.PHONY: lint
lint: tools ## gofmt, go vet, staticcheck, buf lint and buf breaking against main
	@bad=$$(gofmt -l $(MODULES) | grep -v '^pkg/gen/' || true); if [ -n "$$bad" ]; then echo "gofmt would change:"; echo "$$bad"; exit 1; fi
	go vet $(PKGS)
	staticcheck $(PKGS)
	go vet -tags fault ./services/cdc-relay/... ./services/projector-order-read-model/...
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

.PHONY: clean
clean: ## remove build output (not the stack's data or caches)
	rm -rf bin
