//go:build !linux

package faults

import "syscall"

// childAttr: outside Linux the children share the suite's process group
// and are killed by its deferred cleanup only.
func childAttr() *syscall.SysProcAttr { return nil }
