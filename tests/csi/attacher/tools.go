//go:build tools

// Package tools pins csi-attacher's main package so that `go mod tidy` keeps its
// dependencies; build it with `go build github.com/kubernetes-csi/external-attacher/v4/cmd/csi-attacher`.
package tools

import _ "github.com/kubernetes-csi/external-attacher/v4/cmd/csi-attacher"
