package bench

import (
	"os"
	"strconv"
	"strings"
	"time"
)

// The machine may be shared: other processes' CPU use shows in the
// latency spread and in the calls' timing. cpuMeter tells, for one
// configuration, how busy the machine was and how much of it was the
// benchmark's own processes. It reads Linux's /proc; elsewhere it reports
// nothing.

// clockTick is the unit of /proc's CPU times: USER_HZ, 100 on every Linux
// the benchmark runs on.
const clockTick = 10 * time.Millisecond

// cpuSnapshot is the machine's busy time and the CPU time of the
// benchmark's long-lived processes (itself, the simulator, Redis).
type cpuSnapshot struct {
	at      time.Time
	machine time.Duration // all CPUs, busy (not idle or iowait)
	ours    time.Duration // the listed pids
	ok      bool
}

func takeCPU(pids ...int) cpuSnapshot {
	s := cpuSnapshot{at: time.Now()}
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return s
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 6 || f[0] != "cpu" {
		return s
	}
	var total, idle int64
	for i, v := range f[1:] {
		n, _ := strconv.ParseInt(v, 10, 64)
		if i >= 8 { // guest times are counted in user already
			break
		}
		total += n
		if i == 3 || i == 4 { // idle, iowait
			idle += n
		}
	}
	s.machine = time.Duration(total-idle) * clockTick
	for _, pid := range pids {
		s.ours += procCPU(pid)
	}
	s.ok = true
	return s
}

// procCPU is a process's user and system time, or 0.
func procCPU(pid int) time.Duration {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The command name, field 2, is in parentheses and may hold spaces.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 { // utime and stime are fields 14 and 15, here 11 and 12
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * clockTick
}

// cpuUse is the CPU use over one configuration, in cores.
type cpuUse struct {
	machine, ours, others float64
	ok                    bool
}

// cpuBetween computes the use between two snapshots; workers is the CPU
// time of the processes that lived only in between.
func cpuBetween(a, b cpuSnapshot, workers time.Duration) cpuUse {
	span := b.at.Sub(a.at).Seconds()
	if !a.ok || !b.ok || span <= 0 {
		return cpuUse{}
	}
	machine := (b.machine - a.machine).Seconds() / span
	ours := (b.ours - a.ours + workers).Seconds() / span
	return cpuUse{machine: machine, ours: ours, others: max(machine-ours, 0), ok: true}
}
