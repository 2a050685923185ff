package spec

// RootKind says what the sandbox's / is made of.
type RootKind string

const (
	RootHost    RootKind = "host"    // a tmpfs with the host's system directories bound read-only
	RootOverlay RootKind = "overlay" // the host's system directories (or Dir) writable through an overlay
	RootRootfs  RootKind = "rootfs"  // an unpacked root filesystem directory
	RootImage   RootKind = "image"   // an image's layers from the store
)

// Root describes the sandbox's root filesystem.
type Root struct {
	Kind          RootKind
	Dir           string   // RootRootfs: the directory; RootOverlay: an optional rootfs as the lower
	Lowers        []string // RootImage: the layer directories, top first
	Overlay       bool     // RootRootfs/RootImage: writable through an overlay
	Persist       string   // overlay: keep upper and work directories here
	OverlayDriver string   // "auto", "kernel" or "fuse"
	// FuseOverlayfs is the host's fuse-overlayfs binary, found by the parent
	// (init's PATH is the sandbox's); "" when it is not installed.
	FuseOverlayfs string
	// MountDir is an empty directory of the caller's that init may mount on
	// inside its private mount namespace: fuse-overlayfs must see its upper
	// directory by a path, and a tmpfs upper has none until it is attached.
	MountDir string
}
