//go:build !linux

package bench

import (
	"errors"
	"syscall"
)

// childAttr: outside Linux the children share the benchmark's process
// group and are killed by its deferred cleanup only.
func childAttr() *syscall.SysProcAttr { return nil }

const simNice = 0

// favour is not implemented outside Linux.
func favour(int) error { return errors.New("not on Linux") }
