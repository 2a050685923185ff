package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/sbx-sandbox/sbx/images/fetch"
	"github.com/sbx-sandbox/sbx/images/store"
	"github.com/sbx-sandbox/sbx/images/subids"
	"github.com/sbx-sandbox/sbx/spec"
)

// RootFlags choose what the sandbox's / is made of.
type RootFlags struct {
	Overlay       bool   `name:"overlay" help:"Make the root writable through an overlay; writes are discarded at exit unless --persist."`
	Persist       string `name:"persist" placeholder:"DIR" help:"Keep the overlay's writes (upper and work directories) in DIR for the next run."`
	OverlayDriver string `name:"overlay-driver" enum:",auto,kernel,fuse" default:"" help:"Overlay implementation: kernel (Linux 5.11+ in a user namespace), fuse (fuse-overlayfs) or auto."`
	Rootfs        string `name:"rootfs" placeholder:"DIR" help:"Run from an unpacked root filesystem (read-only unless --overlay)."`
	Image         string `name:"image" placeholder:"REF" help:"Run from a container image (pulled when not in the store); its layers are overlay lowers."`
	Store         string `name:"store" placeholder:"DIR" help:"Image store (default: $XDG_DATA_HOME/sbx)."`
}

// applyRoot lays the root flags over the profile's root, and for an image
// takes its command, environment, working directory and user where flags
// left them.
func (r *RunCmd) applyRoot(s *spec.Spec) error {
	f := r.RootFlags
	if f.Rootfs != "" && f.Image != "" {
		return fmt.Errorf("--rootfs and --image both give the root: pick one")
	}
	if f.OverlayDriver != "" {
		s.Root.OverlayDriver = f.OverlayDriver
	}
	switch {
	case f.Rootfs != "":
		dir, err := existingDir(f.Rootfs, "--rootfs")
		if err != nil {
			return err
		}
		s.Root.Kind, s.Root.Dir = spec.RootRootfs, dir
		s.Root.Overlay = s.Root.Overlay || f.Overlay
		if !s.Root.Overlay {
			// A read-only root cannot grow the directories the sandbox mounts on.
			for _, d := range []string{"proc", "dev", "tmp"} {
				if st, err := os.Stat(filepath.Join(dir, d)); err != nil || !st.IsDir() {
					return fmt.Errorf("--rootfs %s has no /%s to mount on and is read-only: create it (mkdir %s), or add --overlay", f.Rootfs, d, filepath.Join(dir, d))
				}
			}
		}
	case f.Image != "":
		if err := r.applyImage(s); err != nil {
			return err
		}
	case f.Overlay && (s.Root.Kind == spec.RootHost || s.Root.Kind == ""):
		s.Root.Kind = spec.RootOverlay
	case f.Overlay:
		s.Root.Overlay = true
	}
	if s.Root.Kind == spec.RootImage && len(s.Root.Lowers) == 0 {
		return fmt.Errorf("the profile's root is an image: give it with --image REF")
	}
	overlay := s.Root.Kind == spec.RootOverlay || s.Root.Kind == spec.RootImage ||
		(s.Root.Kind == spec.RootRootfs && s.Root.Overlay)
	if f.OverlayDriver != "" && !overlay {
		return fmt.Errorf("--overlay-driver picks how an overlay is mounted: add --overlay (or --image)")
	}
	if f.Persist != "" {
		if !overlay {
			return fmt.Errorf("--persist keeps an overlay's writes: add --overlay")
		}
		dir, err := filepath.Abs(f.Persist)
		if err != nil {
			return err
		}
		s.Root.Persist = dir
	}
	if !overlay {
		return nil
	}
	if s.Root.Persist != "" {
		if err := os.MkdirAll(s.Root.Persist, 0o700); err != nil {
			return fmt.Errorf("--persist %s: %w", s.Root.Persist, err)
		}
	}
	s.Root.FuseOverlayfs, _ = exec.LookPath("fuse-overlayfs")
	// Only fuse-overlayfs needs it, and says so when it is missing.
	s.Root.MountDir, _ = mountDir(f.Store)
	return nil
}

// mountDir is the store's empty directory that sandboxes mount on in their
// own mount namespaces (see spec.Root.MountDir).
func mountDir(storeDir string) (string, error) {
	st, err := openStore(storeDir)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(st.Root(), "mnt")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("image store: %w", err)
	}
	return dir, nil
}

func existingDir(p, flag string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	st, err := os.Stat(abs)
	if err != nil || !st.IsDir() {
		return "", fmt.Errorf("%s %s: not a directory: give an unpacked root filesystem", flag, p)
	}
	return abs, nil
}

func openStore(dir string) (*store.Store, error) {
	if dir == "" {
		var err error
		if dir, err = store.DefaultRoot(); err != nil {
			return nil, err
		}
	}
	st, err := store.Open(dir)
	if err != nil {
		return nil, err
	}
	if st.Mapped() {
		st.SetRemover(subids.RemoveAll)
	}
	return st, nil
}

// findImage looks ref up in the store: by name, else by digest.
func findImage(s *store.Store, ref string) (store.Image, error) {
	if n, err := fetch.Normalize(ref); err == nil {
		if img, err := s.Lookup(n); err == nil {
			return img, nil
		}
	}
	return s.Lookup(ref)
}

func (r *RunCmd) applyImage(s *spec.Spec) error {
	st, err := openStore(r.Store)
	if err != nil {
		return err
	}
	// Held until sbx exits: `sbx image rm` cannot take layers from under a
	// running sandbox.
	if _, err := st.Lock(false); err != nil {
		return err
	}
	img, err := findImage(st, r.Image)
	if errors.Is(err, store.ErrNotFound) {
		img, err = fetch.Pull(context.Background(), st, r.Image, fetchOptions())
	}
	if err != nil {
		return err
	}
	s.Root.Kind, s.Root.Overlay = spec.RootImage, true
	s.Root.Lowers = nil
	for i := len(img.Layers) - 1; i >= 0; i-- {
		dir, err := st.LayerDir(img.Layers[i])
		if err != nil {
			return err
		}
		s.Root.Lowers = append(s.Root.Lowers, dir)
	}
	c := img.Config
	// Docker's rule: the arguments replace Cmd, the Entrypoint stays.
	args := s.Argv
	if len(args) == 0 {
		args = c.Cmd
	}
	s.Argv = append(slices.Clone(c.Entrypoint), args...)
	if len(s.Argv) == 0 {
		return fmt.Errorf("image %s has no command: give one after --", r.Image)
	}
	if r.Chdir == "" {
		s.Cwd = c.WorkingDir
		if s.Cwd == "" {
			s.Cwd = "/"
		}
	}
	if r.UID == nil {
		uid, gid, err := st.ResolveUser(img, c.User)
		if err != nil {
			return err
		}
		s.UID = uid
		if r.GID == nil {
			s.GID = gid
		}
	}
	if st.Mapped() {
		// The store's files belong to your subordinate ids as uid 1 and up,
		// to you as 0: the sandbox must map them the same way.
		// Init stays at 0; the command switches to the image's user.
		if s.UID != 0 || s.GID != 0 {
			s.RunAs = &spec.IDs{UID: s.UID, GID: s.GID}
			s.UID, s.GID = 0, 0
		}
		s.MapUsers = "auto"
	}
	s.Env = imageEnv(c.Env, s.Env, r.KeepEnv, r.Setenv)
	if !slices.ContainsFunc(s.Env, func(kv string) bool { return strings.HasPrefix(kv, "HOME=") }) {
		home := "/"
		if s.UID == 0 && s.RunAs == nil {
			home = "/root"
		}
		s.Env = append(s.Env, "HOME="+home)
	}
	return nil
}

// imageEnv is the image's environment with the caller's terminal and
// locale settings, and everything the caller set explicitly, on top.
func imageEnv(image, clean []string, keep bool, set []string) []string {
	env := map[string]string{}
	var order []string
	put := func(kv string) {
		k, v, _ := strings.Cut(kv, "=")
		if _, ok := env[k]; !ok {
			order = append(order, k)
		}
		env[k] = v
	}
	for _, kv := range image {
		put(kv)
	}
	if _, ok := env["PATH"]; !ok {
		put("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	}
	explicit := map[string]bool{}
	for _, kv := range set {
		k, _, _ := strings.Cut(kv, "=")
		explicit[k] = true
	}
	for _, kv := range clean {
		k, _, _ := strings.Cut(kv, "=")
		if keep || explicit[k] || k == "TERM" || k == "LANG" || strings.HasPrefix(k, "LC_") {
			put(kv)
		}
	}
	out := make([]string, 0, len(order))
	for _, k := range order {
		out = append(out, k+"="+env[k])
	}
	return out
}

// fetchOptions shows progress and the unpacker's notes on stderr.
func fetchOptions() fetch.Options {
	o := fetch.Options{Progress: os.Stderr}
	o.Unpack.Note = func(n string) { fmt.Fprintf(os.Stderr, "sbx: note: %s\n", n) }
	return o
}

// ImageCmd is `sbx image`.
type ImageCmd struct {
	Pull     ImagePullCmd   `cmd:"" help:"Pull an image from a registry (credentials from ~/.docker/config.json)."`
	Import   ImageImportCmd `cmd:"" help:"Import a docker save archive or an OCI image layout (directory or tar)."`
	Ls       ImageLsCmd     `cmd:"" help:"List the stored images."`
	Rm       ImageRmCmd     `cmd:"" help:"Remove an image; layers another image uses stay."`
	Store    string         `name:"store" placeholder:"DIR" help:"Image store (default: $XDG_DATA_HOME/sbx)."`
	MapUsers string         `name:"map-users" enum:",auto" default:"" help:"auto: a new store keeps the images' file owners through your subordinate ids (its images then run with --map-users auto)."`
}

// open opens the store, making a new one keep owners when asked.
func (c *ImageCmd) open() (*store.Store, error) {
	st, err := openStore(c.Store)
	if err != nil || c.MapUsers != "auto" || st.Mapped() {
		return st, err
	}
	if err := subids.Available(); err != nil {
		return nil, err
	}
	if err := st.SetMapped(); err != nil {
		return nil, err
	}
	st.SetRemover(subids.RemoveAll)
	return st, nil
}

type ImagePullCmd struct {
	Ref string `arg:"" help:"Image reference, e.g. alpine:3 or registry.example.org/app@sha256:..."`
}

func (c *ImagePullCmd) Run(parent *ImageCmd) error {
	st, err := parent.open()
	if err != nil {
		return err
	}
	_, err = fetch.Pull(context.Background(), st, c.Ref, fetchOptions())
	return err
}

type ImageImportCmd struct {
	Path string `arg:"" help:"A docker save archive, an OCI layout directory or an OCI layout tar."`
	Ref  string `name:"ref" placeholder:"NAME" help:"Name the imported image (default: the names in the archive)."`
}

func (c *ImageImportCmd) Run(parent *ImageCmd) error {
	st, err := parent.open()
	if err != nil {
		return err
	}
	imgs, err := fetch.Import(context.Background(), st, c.Path, c.Ref, fetchOptions())
	if err != nil {
		return err
	}
	for _, img := range imgs {
		fmt.Println(img.Digest)
	}
	return nil
}

type ImageLsCmd struct{}

func (c *ImageLsCmd) Run(parent *ImageCmd) error {
	st, err := parent.open()
	if err != nil {
		return err
	}
	imgs, err := st.Images()
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "REFERENCE\tDIGEST\tSIZE\tLAYERS")
	for _, img := range imgs {
		refs := img.Refs
		if len(refs) == 0 {
			refs = []string{"<none>"}
		}
		for _, ref := range refs {
			fmt.Fprintf(w, "%s\t%s\t%s\t%d\n", ref, shortDigest(img.Digest), fetch.Human(img.Size), len(img.Layers))
		}
	}
	return w.Flush()
}

func shortDigest(d string) string {
	if len(d) > 19 {
		return d[:19]
	}
	return d
}

type ImageRmCmd struct {
	Refs []string `arg:"" name:"ref" help:"Image references or digests."`
}

func (c *ImageRmCmd) Run(parent *ImageCmd) error {
	st, err := parent.open()
	if err != nil {
		return err
	}
	unlock, err := st.TryLock()
	if err != nil {
		return err
	}
	defer unlock()
	for _, ref := range c.Refs {
		img, err := findImage(st, ref)
		if err != nil {
			return err
		}
		name := ref
		if n, err := fetch.Normalize(ref); err == nil && slices.Contains(img.Refs, n) {
			name = n
		} else {
			name = img.Digest
		}
		removed, err := st.Remove(name)
		if err != nil {
			return err
		}
		fmt.Printf("removed %s; layers freed: %d\n", ref, len(removed))
	}
	return nil
}
