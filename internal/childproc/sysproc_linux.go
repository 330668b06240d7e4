package childproc

import "syscall"

// sysProcAttr puts a child in its own process group (a Ctrl-C at the
// terminal reaches the parent, which then stops its children itself) and
// has the kernel kill it when the parent dies, even by SIGKILL. Pdeathsig
// fires when the thread that started the child exits; Go only ends threads
// that a goroutine locked and left locked, which these programs never do.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
