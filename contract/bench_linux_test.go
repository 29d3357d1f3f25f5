package contract

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// BenchmarkInstallStages gives what each stage of an installation costs:
// one installation at a time on a goroutine locked to its thread, every
// stage measured in that thread's CPU time. Wall time per stage
// (BenchmarkInstall) also counts waiting for the other goroutines, the
// committer and GC, and the wake-up after the commit. The store stage is
// the commit's wall time, one commit per installation here.
func BenchmarkInstallStages(b *testing.B) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	e := newInstallEnv(b)
	e.in.Window = time.Nanosecond
	e.in.StageClock = threadCPU
	reqs := installRequests(b, e, 64)
	var sum Timings
	i := 0
	for b.Loop() {
		res, err := e.in.Handle(context.Background(), ActionInstall, reqs[i%len(reqs)], 5600)
		if err != nil {
			b.Fatal(err)
		}
		sum.Add(res.Timings)
		i++
	}
	reportStages(b, sum)
}

func threadCPU() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		panic(err)
	}
	return time.Duration(ts.Nano())
}

// BenchmarkInstallStages20 is BenchmarkInstallStages for ISO 15118-20
// installations of each variant.
func BenchmarkInstallStages20(b *testing.B) {
	for _, v := range variants20 {
		b.Run(v.name, func(b *testing.B) {
			runtime.LockOSThread() // each sub-benchmark runs on a goroutine of its own
			defer runtime.UnlockOSThread()
			e, reqs := install20Bench(b, v.ed)
			e.in.StageClock = threadCPU
			var sum Timings
			i := 0
			for b.Loop() {
				i++
				res, err := e.in.Handle20(context.Background(), reqs[i%len(reqs)], LimitOCPP21, Options20{})
				var ie *InstallError
				if errors.As(err, &ie) && ie.Reason == ReasonNoContract {
					e.in.sessions.reset()
					res, err = e.in.Handle20(context.Background(), reqs[i%len(reqs)], LimitOCPP21, Options20{})
				}
				if err != nil {
					b.Fatal(err)
				}
				sum.Add(res.Timings)
			}
			reportStages(b, sum)
		})
	}
}
