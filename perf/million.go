// perf/million.go: the Go counterpart of perf/million.c, run by it when
// `go` is installed. One million goroutines, each blocked receiving on one
// shared channel that nobody sends to, on one OS thread (GOMAXPROCS=1).
// Then the channel is closed and every goroutine returns. Prints the time
// per goroutine of both phases and the resident memory per blocked
// goroutine, in lines perf/million.c reads.
package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const goroutines = 1000000

var blocked int64

func rssKiB() float64 {
	data, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return -1
	}
	fields := strings.Fields(string(data))
	pages, _ := strconv.ParseFloat(fields[1], 64)
	return pages * float64(os.Getpagesize()) / 1024
}

func main() {
	runtime.GOMAXPROCS(1)
	ch := make(chan int)
	var done sync.WaitGroup
	done.Add(goroutines)
	before := rssKiB()
	start := time.Now()
	for i := 0; i < goroutines; i++ {
		go func() {
			atomic.AddInt64(&blocked, 1)
			<-ch
			done.Done()
		}()
	}
	// Let every goroutine run up to its receive, as go() does in C.
	for atomic.LoadInt64(&blocked) < goroutines {
		runtime.Gosched()
	}
	elapsed := time.Since(start)
	alive := rssKiB()
	fmt.Printf("go_million_go: %.1f ns/op\n",
		float64(elapsed.Nanoseconds())/goroutines)
	start = time.Now()
	close(ch)
	done.Wait()
	fmt.Printf("go_million_close: %.1f ns/op\n",
		float64(time.Since(start).Nanoseconds())/goroutines)
	fmt.Printf("go_million_kib: %.2f KiB per goroutine\n",
		(alive-before)/goroutines)
}
