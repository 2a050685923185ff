module github.com/sbx-sandbox/sbx

go 1.26.8

require github.com/alecthomas/kong v1.17.0

require (
	github.com/rootless-containers/rootlesskit/v3 v3.3.0 // indirect
	golang.org/x/sys v0.50.0 // indirect
	kernel.org/pub/linux/libs/security/libcap/psx v1.2.78 // indirect
)
