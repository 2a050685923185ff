package profiles

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Xauthority families (X11/Xauth.h).
const (
	familyLocal = 256
	familyWild  = 65535
)

// xauthEntry is one record of an Xauthority file.
type xauthEntry struct {
	family                      uint16
	address, number, name, data []byte
}

func readXauth(b []byte) ([]xauthEntry, error) {
	r := bytes.NewReader(b)
	var out []xauthEntry
	field := func() ([]byte, error) {
		var n uint16
		if err := binary.Read(r, binary.BigEndian, &n); err != nil {
			return nil, err
		}
		f := make([]byte, n)
		_, err := io.ReadFull(r, f)
		return f, err
	}
	for r.Len() > 0 {
		var e xauthEntry
		if err := binary.Read(r, binary.BigEndian, &e.family); err != nil {
			return nil, err
		}
		for _, f := range []*[]byte{&e.address, &e.number, &e.name, &e.data} {
			v, err := field()
			if err != nil {
				return nil, fmt.Errorf("truncated entry")
			}
			*f = v
		}
		out = append(out, e)
	}
	return out, nil
}

func writeXauth(es []xauthEntry) []byte {
	var b bytes.Buffer
	for _, e := range es {
		binary.Write(&b, binary.BigEndian, e.family)
		for _, f := range [][]byte{e.address, e.number, e.name, e.data} {
			binary.Write(&b, binary.BigEndian, uint16(len(f)))
			b.Write(f)
		}
	}
	return b.Bytes()
}

// sandboxXauthority writes the cookies of display number n from the
// user's Xauthority file src into a file of their own under dir, and
// returns its path ("" when src has none for n). The cookies become valid
// for any hostname: the sandbox has a hostname of its own, under which
// libXau would find nothing; and the sandbox gets no cookie of the user's
// other displays.
func sandboxXauthority(src, n, dir string) (string, error) {
	b, err := os.ReadFile(src)
	if err != nil {
		return "", err
	}
	es, err := readXauth(b)
	if err != nil {
		return "", fmt.Errorf("%s: %w", src, err)
	}
	host, _ := os.Hostname()
	var keep []xauthEntry
	for _, e := range es {
		if string(e.number) != n {
			continue
		}
		if e.family == familyWild || (e.family == familyLocal && string(e.address) == host) {
			e.family, e.address = familyWild, nil
			keep = append(keep, e)
		}
	}
	if len(keep) == 0 {
		return "", nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	dst := filepath.Join(dir, "Xauthority-"+n)
	tmp, err := os.CreateTemp(dir, ".Xauthority-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(writeXauth(keep)); err != nil {
		tmp.Close()
		return "", err
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	return dst, os.Rename(tmp.Name(), dst)
}
