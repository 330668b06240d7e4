package bench

import "syscall"

// simNice is the simulator's scheduling priority: it stands in for a remote
// server, whose clock the load on this machine does not stall, and it
// counts arrivals when its timers fire. Raising a priority needs root (or
// CAP_SYS_NICE); without it the simulator runs at the default.
const simNice = -10

// favour gives pid the simulator's priority.
func favour(pid int) error {
	return syscall.Setpriority(syscall.PRIO_PROCESS, pid, simNice)
}
