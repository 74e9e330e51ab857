// What the function prints: its stdout and stderr become `log` frames, tagged with a call and
// capped per call (8 KiB, then "[output truncated at 8192 bytes]", as python-host.py does).
//
// stdout: fd 1 itself is a pipe's write end (dup3 at start), so fmt.Println, a package-level
// logger made from os.Stdout and a child process's output all land in it.
// stderr: os.Stderr and the standard logger (log.Printf) write to a second pipe, but fd 2 stays
// the sandbox's own: the Go runtime writes its crash output (an unrecovered panic in a goroutine
// the function started, "fatal error: concurrent map writes", out of memory) straight to fd 2
// and then exits, and a pipe this process reads would lose it. The cost: println() and a logger
// made from os.Stderr during the function's package init go to the worker's log of the
// instance, untagged, not to the call's.
//
// A call takes its output before its answer goes (sync): the pipes' read ends are non-blocking
// and only read under their stream's mutex, so what was written before sync is sent by its end.
// Text is line-buffered, as a terminal is: up to the last newline is one entry.
//
// Which call: the most recently started call still in flight (with one in flight, that one);
// 0 when none. With calls running at once a line can land on a neighbour: a pipe does not say
// which goroutine wrote it.
package main

import (
	"bytes"
	"fmt"
	"log"
	"os"
	"sync"
	"syscall"
)

const logCapBytes = 8 * 1024

// callLogs counts each call's logged bytes against the cap and sends the log frames.
type callLogs struct {
	mu      sync.Mutex
	used    map[int64]int
	current func() int64 // the call output is tagged with now
	frames  *frameWriter
}

// emit sends text as one log entry of the current call, cut at the call's cap.
func (l *callLogs) emit(stream string, text []byte) {
	id := l.current()
	l.mu.Lock()
	used := l.used[id]
	if used >= logCapBytes {
		l.mu.Unlock()
		return
	}
	l.used[id] = used + len(text)
	l.mu.Unlock()
	out := text
	if room := logCapBytes - used; len(text) > room {
		out = append(append([]byte{}, text[:room]...), fmt.Sprintf("\n[output truncated at %d bytes]", logCapBytes)...)
	}
	l.frames.send(logMeta{T: "log", ID: id, Stream: stream, Text: string(out)}, nil)
}

// forget drops a finished call's count. Output outside calls (id 0) keeps one count for the
// instance's life, as node-host.mjs does, so a background goroutine cannot flood the worker.
func (l *callLogs) forget(id int64) {
	if id == 0 {
		return
	}
	l.mu.Lock()
	delete(l.used, id)
	l.mu.Unlock()
}

// outputStream reads one pipe: what the function wrote to stdout, or to stderr.
type outputStream struct {
	name    string // "stdout" or "stderr"
	fd      int    // the pipe's read end, non-blocking
	mu      sync.Mutex
	pending []byte // text after the last newline, not yet sent
	logs    *callLogs
}

// captureOutput points stdout and stderr at pipes and starts reading them. It returns the
// streams (to sync before an answer) and the original fd 2, for the host's own failures.
func captureOutput(logs *callLogs) ([]*outputStream, *os.File, error) {
	original := os.Stderr
	stdout, stdoutWrite, err := newOutputStream("stdout", logs)
	if err != nil {
		return nil, nil, err
	}
	if err := syscall.Dup3(int(stdoutWrite.Fd()), 1, 0); err != nil {
		return nil, nil, fmt.Errorf("pointing fd 1 at the stdout pipe (dup3): %v", err)
	}
	stdoutWrite.Close()
	stderr, stderrWrite, err := newOutputStream("stderr", logs)
	if err != nil {
		return nil, nil, err
	}
	os.Stderr = stderrWrite
	log.SetOutput(stderrWrite)
	return []*outputStream{stdout, stderr}, original, nil
}

// newOutputStream makes a pipe and starts a goroutine that reads it as the runtime poller says
// it is readable. It returns the stream and the pipe's (blocking) write end.
func newOutputStream(name string, logs *callLogs) (*outputStream, *os.File, error) {
	var fds [2]int
	if err := syscall.Pipe2(fds[:], syscall.O_CLOEXEC); err != nil {
		return nil, nil, fmt.Errorf("making the %s pipe: %v", name, err)
	}
	if err := syscall.SetNonblock(fds[0], true); err != nil {
		return nil, nil, fmt.Errorf("making the %s pipe's read end non-blocking: %v", name, err)
	}
	s := &outputStream{name: name, fd: fds[0], logs: logs}
	// A non-blocking fd joins the runtime poller: RawConn.Read waits for it to be readable
	// without reading, so every read happens in drainLocked, under s.mu.
	reader := os.NewFile(uintptr(fds[0]), name+" pipe")
	raw, err := reader.SyscallConn()
	if err != nil {
		return nil, nil, fmt.Errorf("polling the %s pipe: %v", name, err)
	}
	go func() {
		raw.Read(func(uintptr) bool {
			s.mu.Lock()
			defer s.mu.Unlock()
			return s.drainLocked()
		})
		reader.Close() // keep the *os.File alive (its finalizer would close the fd) until the end
	}()
	return s, os.NewFile(uintptr(fds[1]), "/dev/"+name), nil
}

// drainLocked reads all the pipe holds now and sends its complete lines. true: the pipe ended.
func (s *outputStream) drainLocked() bool {
	buf := make([]byte, 64*1024)
	for {
		n, err := syscall.Read(s.fd, buf)
		if err == syscall.EINTR {
			continue
		}
		if err == syscall.EAGAIN {
			return false
		}
		if err != nil || n == 0 {
			s.flushLocked()
			return true
		}
		s.pending = append(s.pending, buf[:n]...)
		if cut := bytes.LastIndexByte(s.pending, '\n'); cut >= 0 {
			s.logs.emit(s.name, s.pending[:cut+1])
			s.pending = append([]byte{}, s.pending[cut+1:]...)
		}
		if len(s.pending) >= logCapBytes {
			s.flushLocked()
		}
	}
}

// flushLocked sends the text after the last newline too.
func (s *outputStream) flushLocked() {
	if len(s.pending) > 0 {
		s.logs.emit(s.name, s.pending)
		s.pending = nil
	}
}

// sync sends everything written to the pipe so far, a last unfinished line included: what a
// call printed goes out before its answer.
func (s *outputStream) sync() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.drainLocked()
	s.flushLocked()
}
