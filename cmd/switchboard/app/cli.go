package app

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/switchboard-sip/switchboard/cmd/switchboard/ctl"
)

// synopsis is the usage line of every subcommand.
const synopsis = `usage: switchboard [run] [-config FILE] [-listen URI]... [-watch=false]
       switchboard validate [-config FILE | FILE] [-listen URI]...
       switchboard stages
       switchboard version
       switchboard store check FILE
       switchboard ctl [-config FILE] [-json] COMMAND [ARGS]
Each takes -h for its flags.`

// Main runs the command with its arguments (without the program name) and
// returns the exit code: 0, 1 for a config or start-up error, 2 for usage.
// The stages it knows are those registered by the binary's imports.
// Without a subcommand it runs the proxy; a word that is not a subcommand
// is a usage error, never a start.
func Main(args []string, stdout, stderr io.Writer) int {
	name, rest := "run", args
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, rest = args[0], args[1:]
	}
	switch name {
	case "run":
		return run(rest, stdout, stderr)
	case "validate":
		return validate(rest, stdout, stderr)
	case "stages":
		return listStages(rest, stdout, stderr)
	case "version":
		return printVersion(rest, stdout, stderr)
	case "store":
		return storeCommand(rest, stdout, stderr)
	case "ctl":
		return ctl.Main(rest, stdout, stderr)
	case "help":
		fmt.Fprintln(stdout, synopsis)
		return 0
	}
	fmt.Fprintf(stderr, "switchboard: unknown subcommand %q\n%s\n", name, synopsis)
	return 2
}

// newFlags returns the flag set of a subcommand; its usage is the
// synopsis and the subcommand's flags.
func newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(new(bytes.Buffer))
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses a subcommand's flags, which may come before and after
// its arguments, and allows at most max arguments. With -h it prints the
// usage to stdout and returns 0; a mistake prints it to stderr and returns
// 2; ok says the command may go on with the arguments.
func parseFlags(fs *flag.FlagSet, args []string, max int, stdout, stderr io.Writer) (pos []string, code int, ok bool) {
	var err error
	for {
		if err = fs.Parse(args); err != nil || fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if err == flag.ErrHelp {
		_, _ = io.Copy(stdout, fs.Output().(*bytes.Buffer))
		return nil, 0, false
	}
	if err == nil && len(pos) > max {
		fmt.Fprintf(fs.Output(), "switchboard %s: unexpected argument %q\n", fs.Name(), pos[max])
		fs.Usage()
		err = flag.ErrHelp
	}
	if err != nil {
		_, _ = io.Copy(stderr, fs.Output().(*bytes.Buffer))
		return nil, 2, false
	}
	return pos, 0, true
}

// usageError prints a usage mistake of a subcommand and returns 2.
func usageError(stderr io.Writer, name, format string, a ...any) int {
	fmt.Fprintf(stderr, "switchboard %s: %s\n%s\n", name, fmt.Sprintf(format, a...), synopsis)
	return 2
}
