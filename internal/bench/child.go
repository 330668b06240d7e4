package bench

import "github.com/recallq/recallq/internal/childproc"

// The processes this package starts; see package childproc.
type (
	child    = childproc.Child
	children = childproc.Group
)
