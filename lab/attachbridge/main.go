// Command attachbridge is the lab's stand-in for `op25bctl ovs attach` and
// `op25bctl ovs detach` until the CLI carries them: the same code
// (internal/ovsattach) behind the same arguments, so the lab attaches its
// bridges exactly as an operator will.
//
//	attachbridge attach BRIDGE --controllers tcp:IP:PORT,...
//	attachbridge detach BRIDGE
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/op25b/op25b/internal/ovsattach"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "attachbridge:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) < 2 {
		return errors.New("usage: attachbridge attach BRIDGE --controllers tcp:IP:PORT,... | detach BRIDGE")
	}
	verb, bridge := args[0], args[1]
	fs := flag.NewFlagSet(verb, flag.ContinueOnError)
	controllers := fs.String("controllers", "", "comma-separated controller targets (attach)")
	if err := fs.Parse(args[2:]); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	switch verb {
	case "attach":
		return ovsattach.Attach(ctx, bridge, []string{*controllers})
	case "detach":
		return ovsattach.Detach(ctx, bridge)
	}
	return fmt.Errorf("unknown verb %q: want attach or detach", verb)
}
