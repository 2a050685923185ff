package spec

// NetMode says which network the sandbox gets.
type NetMode string

const (
	NetNone  NetMode = "none"  // a new network namespace with only loopback
	NetHost  NetMode = "host"  // the host's network namespace
	NetSlirp NetMode = "slirp" // user-mode networking run by the parent
)

// Net describes the sandbox's network.
type Net struct {
	Mode NetMode
}
