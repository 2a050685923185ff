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
}
