package profiles

import (
	"fmt"
	"strings"

	"github.com/sbx-sandbox/sbx/spec"
)

// keptEnv are the variables a clean environment keeps from the caller's:
// enough for a shell and for locale-aware programs, nothing that points at
// host services (DBUS_SESSION_BUS_ADDRESS, SSH_AUTH_SOCK, DISPLAY, ...).
var keptEnv = []string{"PATH", "HOME", "TERM", "LANG", "LANGUAGE", "USER", "LOGNAME", "SHELL", "COLORTERM", "TZ"}

// environment builds the command's environment from the caller's: a clean
// one unless keep, then set (K=V) and unset applied in that order.
func environment(environ []string, keep bool, set, unset []string) ([]string, error) {
	vars := map[string]string{}
	var order []string
	put := func(k, v string) {
		if _, ok := vars[k]; !ok {
			order = append(order, k)
		}
		vars[k] = v
	}
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		if keep || isKept(k) {
			put(k, v)
		}
	}
	if _, ok := vars["PATH"]; !ok {
		put("PATH", spec.DefaultPath)
	}
	for _, kv := range set {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--setenv %q: expected KEY=VALUE", kv)
		}
		put(k, v)
	}
	for _, k := range unset {
		delete(vars, k)
	}
	out := make([]string, 0, len(vars))
	for _, k := range order {
		if v, ok := vars[k]; ok {
			out = append(out, k+"="+v)
		}
	}
	return out, nil
}

func isKept(k string) bool {
	if strings.HasPrefix(k, "LC_") {
		return true
	}
	for _, e := range keptEnv {
		if k == e {
			return true
		}
	}
	return false
}
