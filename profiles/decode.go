package profiles

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// Problem is one thing wrong with a profile, at a line of a file.
type Problem struct {
	File string
	Line int // 0 when the problem has no single line
	Msg  string
}

func (p Problem) Error() string {
	if p.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", p.File, p.Line, p.Msg)
	}
	return fmt.Sprintf("%s: %s", p.File, p.Msg)
}

// Problems is every problem found in one check.
type Problems []Problem

func (ps Problems) Error() string {
	var b strings.Builder
	for i, p := range ps {
		if i > 0 {
			b.WriteString("\n")
		}
		b.WriteString(p.Error())
	}
	return b.String()
}

var tomlLineErr = regexp.MustCompile(`^toml: line (\d+)(?: \(last key "([^"]*)"\))?: (.*)$`)

// decode parses one profile file strictly: a syntax error, a value of the
// wrong type or out of range, and every key the schema does not have are
// problems with their lines.
func decode(file string, data []byte) (*Profile, error) {
	var p Profile
	md, err := toml.NewDecoder(bytes.NewReader(data)).Decode(&p)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			msg := pe.Message
			if pe.LastKey != "" && !strings.Contains(msg, pe.LastKey) {
				msg = pe.LastKey + ": " + msg
			}
			return nil, Problems{{File: file, Line: pe.Position.Line, Msg: msg}}
		}
		if m := tomlLineErr.FindStringSubmatch(err.Error()); m != nil {
			line, _ := strconv.Atoi(m[1])
			msg := m[3]
			if m[2] != "" {
				msg = m[2] + ": " + msg
			}
			return nil, Problems{{File: file, Line: line, Msg: msg}}
		}
		return nil, Problems{{File: file, Msg: strings.TrimPrefix(err.Error(), "toml: ")}}
	}
	var ps Problems
	for _, k := range md.Undecoded() {
		ps = append(ps, Problem{File: file, Line: keyLine(data, k), Msg: fmt.Sprintf("unknown key %q", k.String())})
	}
	if len(ps) > 0 {
		return nil, ps
	}
	return &p, nil
}

// keyLine finds the line a key is written on. The TOML decoder knows it but
// does not tell, so this follows the table headers the way a reader does.
func keyLine(data []byte, k toml.Key) int {
	table := strings.Join(k[:len(k)-1], ".")
	last := k[len(k)-1]
	current := ""
	fallback := 0
	for i, line := range strings.Split(string(data), "\n") {
		t := strings.TrimSpace(line)
		if strings.HasPrefix(t, "[") {
			h := strings.Trim(strings.SplitN(t, "#", 2)[0], "[] \t")
			current = h
			if h == k.String() {
				return i + 1 // the key is itself a table
			}
			continue
		}
		name, _, ok := strings.Cut(t, "=")
		if !ok {
			continue
		}
		name = strings.Trim(strings.TrimSpace(name), `"'`)
		full := name
		if current != "" {
			full = current + "." + name
		}
		if full == k.String() || (current == table && name == last) {
			return i + 1
		}
		if fallback == 0 && (strings.HasPrefix(k.String(), full+".") || strings.HasSuffix(name, last)) {
			fallback = i + 1
		}
	}
	return fallback
}
