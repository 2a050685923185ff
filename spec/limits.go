package spec

// Limits are the resource limits of the sandbox.
type Limits struct{}
