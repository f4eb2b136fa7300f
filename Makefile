GO        ?= go
BIN       := bin
VERSION   ?= $(shell cat VERSION 2>/dev/null || echo 0.1.0)
REVISION  ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS   := -s -w \
  -X github.com/prometheus/common/version.Version=$(VERSION) \
  -X github.com/prometheus/common/version.Revision=$(REVISION) \
  -X github.com/prometheus/common/version.Branch=main \
  -X github.com/prometheus/common/version.BuildUser=make
export CGO_ENABLED := 0

.PHONY: all build test deps lint vet fmt bench bench-postgres-exporter clean image demo demo-stop incident

all: build

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/...

deps:
	./scripts/install-deps.sh

vet:
	$(GO) vet ./...

fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

lint: fmt vet
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.6.1 ./...

# test installs what is missing (apt-get), builds, and runs every test:
# the packages' tests with the race detector, then the end-to-end test
# (its parts are processes and containers; -short skips it in the first run;
# -parallel 4: the chain's scenarios, two at a time, beside the healthy soak
# and the compose overlay; each runs its own dockerd and PostgreSQL).
test: deps build fmt vet
	CGO_ENABLED=1 $(GO) test -race -short -count=1 -timeout 8m ./...
	$(GO) test -count=1 -parallel 4 -timeout 14m ./e2e/

# bench runs every benchmark (BenchmarkScrapeREADMESetup reports the
# sessions a warm scrape opens in the README's setups: sessions/scrape);
# bench-postgres-exporter runs the side-by-side comparison with Debian's
# postgres_exporter (installed with apt-get when missing).
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./... | tee bench.txt

bench-postgres-exporter:
	./scripts/bench-postgres-exporter.sh

# image builds the Dockerfile (both binaries FROM scratch) with the local
# docker; the e2e test builds the same Dockerfile on its private dockerd.
IMAGE ?= odoo_exporter:$(VERSION)
image: build
	cp /etc/ssl/certs/ca-certificates.crt $(BIN)/ca-certificates.crt
	docker build -t $(IMAGE) .

# demo starts the end-to-end stack on this machine and leaves it running
# (see docs/e2e.md); incident NAME=... injects an incident; demo-stop
# stops everything.
demo: deps
	./scripts/demo.sh

demo-stop:
	./scripts/demo-stop.sh

incident:
	./scripts/incident.sh "$(NAME)"

clean:
	rm -rf $(BIN) bench.txt bench-side-by-side.txt
