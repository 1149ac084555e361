//go:build tools

// Package tools pins buildkitd and buildctl in go.mod; it is never compiled. The BuildKit module
// cannot be `go install`ed (its go.mod has exclude directives), so tests/cluster/build-buildkit
// builds both commands from this wrapper module.
package tools

import (
	_ "github.com/moby/buildkit/cmd/buildctl"
	_ "github.com/moby/buildkit/cmd/buildkitd"
	_ "github.com/moby/buildkit/frontend/dockerfile/cmd/dockerfile-frontend"
)
