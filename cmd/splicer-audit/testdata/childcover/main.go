// Command childcover is a fixture of cmd/splicer-audit's tests: its test
// runs the test binary as this program in child processes, as
// cmd/splicer's process tests run splicer, to show which children's
// coverage go test counts.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	switch os.Args[1] {
	case "exit":
		exited()
	case "term":
		stop := make(chan os.Signal, 1)
		signal.Notify(stop, syscall.SIGTERM)
		fmt.Println("ready")
		<-stop
		terminated()
	case "kill":
		killed()
		fmt.Println("ready")
		select {}
	}
	os.Exit(0)
}

// exited runs in a child that exits by itself.
func exited() {
	fmt.Println("exited")
}

// terminated runs in a child stopped with SIGTERM, which it handles.
func terminated() {
	fmt.Println("terminated")
}

// killed runs in a child then killed with SIGKILL.
func killed() {
	fmt.Println("killed")
}
