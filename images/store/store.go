// Package store keeps images and their unpacked layers on disk, each layer
// once, keyed by the sha256 of its uncompressed tar (the image config's diff
// ID), and shared by every image that lists it.
//
// Layout under the root:
//
//	layers/<hex>/fs          the unpacked layer, an overlay lower
//	layers/<hex>/size        bytes of the uncompressed tar
//	images/<hex>.json        one image: its refs, config and layer diff IDs
//	tmp/                     layers being unpacked; renamed into layers/ when whole
//	lock                     flock: shared while adding, exclusive while removing
//
// A layer directory only appears under layers/ by an atomic rename after its
// content was unpacked completely and its digest checked, so an interrupted
// pull leaves at most litter in tmp/, which the next writer sweeps.
package store

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sbx-sandbox/sbx/images/unpack"
)

// Store is an image store rooted at one directory.
type Store struct {
	root   string
	mapped bool
	// removeAll removes a tree of the store; a store that keeps owners
	// needs its user namespace for that (SetRemover).
	removeAll func(string) error
}

// ownersFile records, once, whether the store keeps the archives' file
// owners (through the caller's subordinate ids) or gives every file to the
// caller: layers of the two kinds cannot be mixed.
const ownersFile = "owners"

// Config is the part of an image's configuration a sandbox uses.
type Config struct {
	Env        []string `json:",omitempty"`
	WorkingDir string   `json:",omitempty"`
	Entrypoint []string `json:",omitempty"`
	Cmd        []string `json:",omitempty"`
	User       string   `json:",omitempty"`
}

// Image is one stored image.
type Image struct {
	Digest   string   // sha256:<hex> of the manifest
	Refs     []string // normalised references naming it
	Layers   []string // diff IDs, sha256:<hex>, bottom layer first
	Size     int64    // bytes of the uncompressed layers
	Config   Config
	Platform string `json:",omitempty"`
	Added    time.Time
}

// DefaultRoot is $XDG_DATA_HOME/sbx, or ~/.local/share/sbx.
func DefaultRoot() (string, error) {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "sbx"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("find the image store: %w (set XDG_DATA_HOME or use --store DIR)", err)
	}
	return filepath.Join(home, ".local", "share", "sbx"), nil
}

// Open opens (creating when missing) the store at root.
func Open(root string) (*Store, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	for _, d := range []string{"layers", "images", "tmp"} {
		if err := os.MkdirAll(filepath.Join(abs, d), 0o700); err != nil {
			return nil, fmt.Errorf("image store %s: %w", abs, err)
		}
	}
	st := &Store{root: abs, removeAll: unpack.RemoveAll}
	b, err := os.ReadFile(filepath.Join(abs, ownersFile))
	if err == nil {
		st.mapped = strings.TrimSpace(string(b)) == "subids"
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("image store %s: %w", abs, err)
	}
	return st, nil
}

// Mapped reports whether the store keeps file owners through the caller's
// subordinate ids.
func (s *Store) Mapped() bool { return s.mapped }

// SetMapped makes a store without layers keep file owners; a store that
// already folded owners, or already keeps them, stays as it is.
func (s *Store) SetMapped() error {
	if s.mapped {
		return nil
	}
	p := filepath.Join(s.root, ownersFile)
	ents, _ := os.ReadDir(filepath.Join(s.root, "layers"))
	if _, err := os.Stat(p); err == nil || len(ents) > 0 {
		return fmt.Errorf("image store %s gives every file to you; it cannot start keeping owners: use another --store", s.root)
	}
	if err := os.WriteFile(p, []byte("subids\n"), 0o600); err != nil {
		return fmt.Errorf("image store %s: %w", s.root, err)
	}
	s.mapped = true
	return nil
}

// SetRemover replaces how the store removes its trees.
func (s *Store) SetRemover(f func(string) error) { s.removeAll = f }

// Root is the store's directory.
func (s *Store) Root() string { return s.root }

// Lock takes the store lock: shared for adding (many pulls at once) and
// for running an image (for the sandbox's life), exclusive for removing (no
// layer vanishes under a pull that reuses it or a sandbox that mounts it).
// The lock is a raw descriptor, never closed behind the caller's back by a
// finalizer: a caller may hold it until it exits without keeping unlock.
func (s *Store) Lock(exclusive bool) (unlock func(), err error) {
	how := unix.LOCK_SH
	if exclusive {
		how = unix.LOCK_EX
	}
	return s.flock(how)
}

// TryLock takes the exclusive lock or says why it cannot: a removal must
// not wait behind a sandbox that may run for days.
func (s *Store) TryLock() (unlock func(), err error) {
	unlock, err = s.flock(unix.LOCK_EX | unix.LOCK_NB)
	if errors.Is(err, unix.EWOULDBLOCK) {
		return nil, fmt.Errorf("the image store %s is in use by a running sandbox or pull: try again when it ends", s.root)
	}
	return unlock, err
}

func (s *Store) flock(how int) (func(), error) {
	fd, err := unix.Open(filepath.Join(s.root, "lock"), unix.O_CREAT|unix.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock image store: %w", err)
	}
	if err := unix.Flock(fd, how); err != nil {
		unix.Close(fd)
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, err
		}
		return nil, fmt.Errorf("lock image store: %w", err)
	}
	return func() { unix.Close(fd) }, nil
}

func hexOf(digest string) (string, error) {
	h, ok := strings.CutPrefix(digest, "sha256:")
	if !ok || len(h) != 64 {
		return "", fmt.Errorf("digest %q is not sha256:<64 hex>", digest)
	}
	if _, err := hex.DecodeString(h); err != nil {
		return "", fmt.Errorf("digest %q is not sha256:<64 hex>", digest)
	}
	return h, nil
}

// LayerDir is where the layer with this diff ID is unpacked (an overlay lower).
func (s *Store) LayerDir(diffID string) (string, error) {
	h, err := hexOf(diffID)
	if err != nil {
		return "", err
	}
	return filepath.Join(s.root, "layers", h, "fs"), nil
}

// HasLayer reports whether the layer is already unpacked.
func (s *Store) HasLayer(diffID string) bool {
	dir, err := s.LayerDir(diffID)
	if err != nil {
		return false
	}
	_, err = os.Stat(filepath.Dir(dir))
	return err == nil
}

// LayerSize is the uncompressed size recorded for a stored layer.
func (s *Store) LayerSize(diffID string) int64 {
	dir, err := s.LayerDir(diffID)
	if err != nil {
		return 0
	}
	b, _ := os.ReadFile(filepath.Join(filepath.Dir(dir), "size"))
	n, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	return n
}

// PutLayer unpacks the uncompressed tar r as the layer diffID, checking that
// its sha256 is diffID, and makes it visible only once it is whole. A layer
// already present is kept and r is not read.
func (s *Store) PutLayer(diffID string, r io.Reader, opt unpack.Options) error {
	h, err := hexOf(diffID)
	if err != nil {
		return err
	}
	if s.HasLayer(diffID) {
		return nil
	}
	if !opt.Chown {
		if s.mapped {
			return fmt.Errorf("image store %s keeps file owners: its layers are written through its user namespace", s.root)
		}
		// From the first layer on, this store gives every file to the caller.
		if err := os.WriteFile(filepath.Join(s.root, ownersFile), []byte("caller\n"), 0o600); err != nil {
			return fmt.Errorf("image store %s: %w", s.root, err)
		}
	}
	tmp, err := os.MkdirTemp(filepath.Join(s.root, "tmp"), h[:12]+"-")
	if err != nil {
		return fmt.Errorf("image store: %w", err)
	}
	defer unpack.RemoveAll(tmp)
	fs := filepath.Join(tmp, "fs")
	if err := os.Mkdir(fs, 0o755); err != nil {
		return err
	}
	sum := sha256.New()
	counted := &counter{w: sum}
	tee := io.TeeReader(r, counted)
	if err := unpack.Layer(tee, fs, opt); err != nil {
		return fmt.Errorf("layer %s: %w", diffID, err)
	}
	// The tar reader stops at the end marker; the digest covers the padding too.
	if _, err := io.Copy(io.Discard, tee); err != nil {
		return fmt.Errorf("layer %s: %w", diffID, err)
	}
	if got := hex.EncodeToString(sum.Sum(nil)); got != h {
		return fmt.Errorf("layer %s: content has digest sha256:%s; refusing it", diffID, got)
	}
	if err := os.WriteFile(filepath.Join(tmp, "size"), []byte(strconv.FormatInt(counted.n, 10)+"\n"), 0o600); err != nil {
		return err
	}
	// The layer's fs directory must be readable by the sandbox's other ids.
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	err = os.Rename(tmp, filepath.Join(s.root, "layers", h))
	if err != nil && s.HasLayer(diffID) {
		return nil // another pull finished the same layer first
	}
	if err != nil {
		return fmt.Errorf("image store: %w", err)
	}
	return nil
}

type counter struct {
	w io.Writer
	n int64
}

func (c *counter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return c.w.Write(p)
}

// SweepTmp removes what interrupted writers left in tmp/. The caller holds
// the exclusive lock, so no writer is running.
func (s *Store) SweepTmp() error {
	ents, err := os.ReadDir(filepath.Join(s.root, "tmp"))
	if err != nil {
		return err
	}
	for _, e := range ents {
		if err := s.removeAll(filepath.Join(s.root, "tmp", e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// AddImage records img; its refs are taken away from any image holding them
// before (a tag moves), and an image left without refs is dropped.
func (s *Store) AddImage(img Image) error {
	if _, err := hexOf(img.Digest); err != nil {
		return err
	}
	for _, l := range img.Layers {
		if !s.HasLayer(l) {
			return fmt.Errorf("image %s: layer %s is not in the store", img.Digest, l)
		}
	}
	all, err := s.Images()
	if err != nil {
		return err
	}
	for _, old := range all {
		if old.Digest == img.Digest {
			img.Refs = union(old.Refs, img.Refs)
			if !old.Added.IsZero() {
				img.Added = old.Added
			}
			continue
		}
		kept := minus(old.Refs, img.Refs)
		if len(kept) == len(old.Refs) {
			continue
		}
		old.Refs = kept
		if len(kept) == 0 && len(img.Refs) > 0 {
			if err := s.dropImage(old.Digest); err != nil {
				return err
			}
			continue
		}
		if err := s.writeImage(old); err != nil {
			return err
		}
	}
	if img.Added.IsZero() {
		img.Added = time.Now().UTC()
	}
	return s.writeImage(img)
}

func (s *Store) writeImage(img Image) error {
	h, err := hexOf(img.Digest)
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(img, "", "  ")
	if err != nil {
		return err
	}
	final := filepath.Join(s.root, "images", h+".json")
	f, err := os.CreateTemp(filepath.Join(s.root, "images"), ".tmp-")
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), final)
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("record image %s: %w", img.Digest, err)
	}
	return nil
}

func (s *Store) dropImage(digest string) error {
	h, err := hexOf(digest)
	if err != nil {
		return err
	}
	if err := os.Remove(filepath.Join(s.root, "images", h+".json")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// Images lists the stored images, newest first.
func (s *Store) Images() ([]Image, error) {
	ents, err := os.ReadDir(filepath.Join(s.root, "images"))
	if err != nil {
		return nil, fmt.Errorf("image store: %w", err)
	}
	var out []Image
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".json") || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(s.root, "images", e.Name()))
		if err != nil {
			return nil, err
		}
		var img Image
		if err := json.Unmarshal(b, &img); err != nil {
			return nil, fmt.Errorf("image store: %s: %w", e.Name(), err)
		}
		out = append(out, img)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Added.After(out[j].Added) })
	return out, nil
}

// ErrNotFound is returned by Lookup for a name no stored image has.
var ErrNotFound = errors.New("no such image in the store")

// Lookup finds an image by a reference (as normalised by the caller) or by
// its digest or a unique prefix of it (at least 6 hex digits).
func (s *Store) Lookup(ref string) (Image, error) {
	all, err := s.Images()
	if err != nil {
		return Image{}, err
	}
	for _, img := range all {
		for _, r := range img.Refs {
			if r == ref {
				return img, nil
			}
		}
	}
	prefix := strings.TrimPrefix(ref, "sha256:")
	if len(prefix) >= 6 {
		var found []Image
		for _, img := range all {
			if strings.HasPrefix(strings.TrimPrefix(img.Digest, "sha256:"), prefix) {
				found = append(found, img)
			}
		}
		if len(found) == 1 {
			return found[0], nil
		}
		if len(found) > 1 {
			return Image{}, fmt.Errorf("%s names %d images; give more of the digest", ref, len(found))
		}
	}
	return Image{}, fmt.Errorf("%s: %w", ref, ErrNotFound)
}

// Remove removes a reference; the image goes when no reference is left (or
// when it was named by digest), and with it every layer no other image uses.
// It returns the diff IDs of the layers removed.
func (s *Store) Remove(ref string) ([]string, error) {
	img, err := s.Lookup(ref)
	if err != nil {
		return nil, err
	}
	byRef := false
	for _, r := range img.Refs {
		if r == ref {
			byRef = true
		}
	}
	if byRef && len(img.Refs) > 1 {
		img.Refs = minus(img.Refs, []string{ref})
		return nil, s.writeImage(img)
	}
	if err := s.dropImage(img.Digest); err != nil {
		return nil, err
	}
	return s.GC()
}

// GC removes the layers no image lists and sweeps tmp/. The caller holds the
// exclusive lock.
func (s *Store) GC() ([]string, error) {
	all, err := s.Images()
	if err != nil {
		return nil, err
	}
	used := map[string]bool{}
	for _, img := range all {
		for _, l := range img.Layers {
			if h, err := hexOf(l); err == nil {
				used[h] = true
			}
		}
	}
	ents, err := os.ReadDir(filepath.Join(s.root, "layers"))
	if err != nil {
		return nil, err
	}
	var removed []string
	for _, e := range ents {
		if used[e.Name()] {
			continue
		}
		if err := s.removeAll(filepath.Join(s.root, "layers", e.Name())); err != nil {
			return removed, err
		}
		removed = append(removed, "sha256:"+e.Name())
	}
	return removed, s.SweepTmp()
}

func union(a, b []string) []string {
	out := append([]string(nil), a...)
	for _, x := range b {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}

func minus(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}
