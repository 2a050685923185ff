package sandbox

import (
	"fmt"
	"os"

	"github.com/sbx-sandbox/sbx/spec"
)

// mountRoot returns the root filesystem of the kinds other than RootHost
// (an overlay, a rootfs directory, an image's layers) as a detached mount
// (fsmount(2), open_tree(2) OPEN_TREE_CLONE): rootfs.go builds the whole new
// root as a detached tree, attaching /proc, /dev, /tmp and the spec's mounts
// into it with move_mount(2), and never covers a host path, so every host
// path stays resolvable while the root is built. init runs it in the
// sandbox's user and mount namespaces with all capabilities there, before
// pivot_root.
func mountRoot(s *spec.Spec) (*os.File, error) {
	return nil, fmt.Errorf("root kind %q is not supported yet", s.Root.Kind)
}
