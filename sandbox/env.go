package sandbox

import "strings"

// lookupEnv returns the value of k in env.
func lookupEnv(env []string, k string) string {
	for _, kv := range env {
		if strings.HasPrefix(kv, k+"=") {
			return kv[len(k)+1:]
		}
	}
	return ""
}
