package sandbox

import (
	"fmt"

	"github.com/sbx-sandbox/sbx/spec"
)

// mountRoot mounts the root filesystem of the kinds other than RootHost
// (an overlay, a rootfs directory, an image's layers) at target, a directory
// of init's still host-visible mount namespace. rootfs.go then adds /proc,
// /dev, /tmp and the spec's mounts beneath it and pivots into it.
func mountRoot(s *spec.Spec, target string) error {
	return fmt.Errorf("root kind %q is not supported yet", s.Root.Kind)
}
