package faults

import "syscall"

// childAttr puts a child in its own process group and has the kernel kill
// it when the suite dies (even by SIGKILL). Pdeathsig fires when the thread
// that started the child exits; Go only ends threads that a goroutine
// locked and left locked, which this program never does.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
