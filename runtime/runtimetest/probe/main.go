// Command probe is a static test program copied into test containers, for checks busybox
// cannot make: it reports its effective uid and whether setuid to another uid works.
//
//	probe euid          prints "euid=N"
//	probe setuid UID    prints "setuid=ok" or "setuid=<error>"
package main

import (
	"fmt"
	"os"
	"strconv"
	"syscall"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: probe euid | setuid UID")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "euid":
		fmt.Printf("euid=%d\n", os.Geteuid())
	case "setuid":
		uid, err := strconv.Atoi(os.Args[2])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		if err := syscall.Setuid(uid); err != nil {
			fmt.Printf("setuid=%v\n", err)
			return
		}
		fmt.Println("setuid=ok")
	default:
		fmt.Fprintln(os.Stderr, "unknown probe", os.Args[1])
		os.Exit(2)
	}
}
