package bench

import "syscall"

// childAttr puts a child in its own process group and has the kernel kill
// it when the benchmark dies (even by SIGKILL). Pdeathsig fires when the
// thread that started the child exits; Go only ends threads that a
// goroutine locked and left locked, which this program never does.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// simNice is the simulator's scheduling priority: it stands in for a remote
// server, whose clock the load on this machine does not stall, and it
// counts arrivals when its timers fire. Raising a priority needs root (or
// CAP_SYS_NICE); without it the simulator runs at the default.
const simNice = -10

// favour gives pid the simulator's priority.
func favour(pid int) error {
	return syscall.Setpriority(syscall.PRIO_PROCESS, pid, simNice)
}
