//go:build tools

// Package tools pins the upstream metrics-server command built for the e2e tests.
package tools

import _ "sigs.k8s.io/metrics-server/cmd/metrics-server"
