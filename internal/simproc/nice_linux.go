package simproc

import "syscall"

// Nice is the simulator's scheduling priority in the benchmark and the
// fault suite: it stands in for a remote server, whose clock the load on
// this machine does not stall, and it counts arrivals when it reads them
// and when its timers fire. At the default priority, a fault suite's run
// beside a compile (load average 7 on 2 cores) counted 205 calls in a
// sliding second whose whole seconds held at most 191: what a pause of
// about 110 ms in its reading and counting makes of 184 calls/s. Raising
// a priority needs root (or CAP_SYS_NICE); without it the simulator runs
// at the default.
const Nice = -10

// Favour gives pid the simulator's priority, Nice.
func Favour(pid int) error {
	return syscall.Setpriority(syscall.PRIO_PROCESS, pid, Nice)
}
