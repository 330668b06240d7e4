//go:build !linux

package simproc

import "errors"

// Nice is the simulator's scheduling priority: the default outside Linux.
const Nice = 0

// Favour is not implemented outside Linux.
func Favour(int) error { return errors.New("not on Linux") }
