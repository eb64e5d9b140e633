//go:build tools

// Package tools pins the versions of the servers the project runs against.
package tools

import (
	_ "github.com/axllent/mailpit"
	_ "github.com/nats-io/nats-server/v2"
	_ "github.com/nats-io/natscli/nats"
)
