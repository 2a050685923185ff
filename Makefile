# sbx: a rootless sandbox runner. `make` builds ./sbx, statically linked.
GO      ?= go
TAGS    := osusergo netgo
LDFLAGS := -s -w -linkmode external -extldflags "-static"
export CGO_ENABLED := 1

.PHONY: all sbx test test-apps bench check clean setup demo

all: sbx

sbx:
	$(GO) build -trimpath -tags '$(TAGS)' -ldflags '$(LDFLAGS)' -o sbx .

# Installs what the build and the tests need (as root) and prepares the
# unprivileged test user.
setup:
	./scripts/setup-host.sh

# The whole suite: gofmt, vet and staticcheck, unit and integration tests, run as an unprivileged user,
# then every fuzz target for 10 s (scripts/fuzz.sh; SBX_FUZZTIME for more).
test: setup sbx check
	./scripts/test.sh
	./scripts/fuzz.sh

# Real applications in sandboxes: Firefox and Chromium in the browser
# profile under Xvfb (the set-up installs them). The build profile's tests
# are cheap and run in make test.
test-apps: sbx
	SBX_APPS=1 ./scripts/setup-host.sh
	SBX_TEST_APPS=1 ./scripts/test.sh -test.run '^TestApp'

bench: setup sbx
	./scripts/bench.sh

check:
	test -z "$$(gofmt -l . | tee /dev/stderr)"
	$(GO) vet -tags '$(TAGS)' ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 -tags '$(TAGS)' ./...

clean:
	rm -f sbx

# Builds sbx and starts a sandboxed shell as the unprivileged test user.
demo: setup sbx
	@install -m 0755 sbx /usr/local/bin/sbx
	@echo "sbx run -- bash, as $${SBX_TEST_USER:-sbxtest} (exit the shell to leave)"
	@if [ "$$(id -u)" = 0 ]; then runuser -u $${SBX_TEST_USER:-sbxtest} -- sh -c 'cd && exec sbx run -- bash -l'; else ./sbx run -- bash -l; fi
