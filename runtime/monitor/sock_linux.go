package monitor

import (
	"context"
	"errors"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The control socket without package net: a monitor links nothing it does not use, and net
// (its resolver, its init, its code) would be most of what stack-monitor carries. Sockets are non-blocking fds wrapped in *os.File, so reads, writes,
// accepts and deadlines go through Go's poller as net's would.

// unixListener is a listening unix stream socket.
type unixListener struct {
	f  *os.File
	rc syscall.RawConn
}

func listenUnix(path string) (*unixListener, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "bind", Path: path, Err: err}
	}
	if err := unix.Listen(fd, 64); err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "listen", Path: path, Err: err}
	}
	return listenerFD(fd, path)
}

// listenerFD wraps fd, a listening unix stream socket (non-blocking), as a unixListener.
func listenerFD(fd int, path string) (*unixListener, error) {
	f := os.NewFile(uintptr(fd), path)
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &unixListener{f: f, rc: rc}, nil
}

// fd returns the listener's fd number (without os.File.Fd's switch to blocking mode).
func (l *unixListener) fd() int {
	n := -1
	l.rc.Control(func(fd uintptr) { n = int(fd) })
	return n
}

// Accept waits for a connection; it fails once the listener is closed.
func (l *unixListener) Accept() (*os.File, error) {
	var nfd int
	var aerr error
	err := l.rc.Read(func(fd uintptr) bool {
		for {
			nfd, _, aerr = unix.Accept4(int(fd), unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
			if !errors.Is(aerr, unix.EINTR) {
				return !errors.Is(aerr, unix.EAGAIN)
			}
		}
	})
	if err != nil {
		return nil, err
	}
	if aerr != nil {
		return nil, os.NewSyscallError("accept4", aerr)
	}
	return os.NewFile(uintptr(nfd), l.f.Name()), nil
}

func (l *unixListener) Close() error { return l.f.Close() }

// dialUnix connects to the unix stream socket at path. A full backlog is retried until ctx
// ends; a missing socket or one nobody listens on fails at once (ENOENT, ECONNREFUSED).
func dialUnix(ctx context.Context, path string) (*os.File, error) {
	for {
		fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return nil, os.NewSyscallError("socket", err)
		}
		err = unix.Connect(fd, &unix.SockaddrUnix{Name: path})
		if err == nil {
			return os.NewFile(uintptr(fd), path), nil
		}
		unix.Close(fd)
		if !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.EINTR) {
			return nil, &os.PathError{Op: "connect", Path: path, Err: err}
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}
