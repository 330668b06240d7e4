//go:build !linux

package childproc

import "syscall"

// sysProcAttr: outside Linux the children share the parent's process group
// and are killed by its deferred cleanup only.
func sysProcAttr() *syscall.SysProcAttr { return nil }
