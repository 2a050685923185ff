# sbx: a rootless sandbox runner. `make` builds ./sbx, statically linked.
GO      ?= go
TAGS    := osusergo netgo
LDFLAGS := -s -w -linkmode external -extldflags "-static"
export CGO_ENABLED := 1

.PHONY: all sbx test test-apps bench check clean setup

all: sbx

sbx:
	$(GO) build -trimpath -tags '$(TAGS)' -ldflags '$(LDFLAGS)' -o sbx .

# Installs what the build and the tests need (as root) and prepares the
# unprivileged test user.
setup:
	./scripts/setup-host.sh

# The whole suite: unit and integration tests, run as an unprivileged user.
test: setup sbx
	./scripts/test.sh

# Real applications (browsers, builds) in sandboxes.
test-apps: setup sbx
	SBX_TEST_APPS=1 ./scripts/test.sh -run 'App'

bench: setup sbx
	./scripts/bench.sh

check:
	gofmt -l . | tee /dev/stderr | (! read)
	$(GO) vet -tags '$(TAGS)' ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@2025.1.1 -tags '$(TAGS)' ./...

clean:
	rm -f sbx
