package sandbox

import (
	"os"

	"github.com/sbx-sandbox/sbx/slirp"
	"github.com/sbx-sandbox/sbx/spec"
)

// createTap makes the sandbox's TAP device inside its network namespace
// while init still holds CAP_NET_ADMIN there; the parent runs the network
// on the returned fd (slirp.Stack.Attach). Call it before pivot_root, while
// the host's /dev/net/tun is still in view.
func createTap(n spec.Net) (*os.File, error) {
	return slirp.CreateTap(n)
}
