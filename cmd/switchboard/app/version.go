package app

import (
	"fmt"
	"io"
	"runtime/debug"
)

// Version describes the binary, from the build information Go stamps in it:
// the main module's version, the VCS revision it was built from and the Go
// release that built it.
type Version struct {
	// Module is the main module's version: a tag, a pseudo-version, or
	// "(devel)" for a build without VCS information.
	Module string
	// Revision is the commit; Modified says the tree had changes.
	Revision string
	Modified bool
	// Go is the Go release.
	Go string
}

// BuildVersion reads the version of the running binary.
func BuildVersion() Version {
	v := Version{Module: "(devel)", Revision: "unknown"}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	v.Go = bi.GoVersion
	if bi.Main.Version != "" {
		v.Module = bi.Main.Version
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Revision = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	return v
}

// String reads `v1.2.0 (revision 3735ce9a1b2c, modified) go1.26.8`.
func (v Version) String() string {
	rev := v.Revision
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if v.Modified {
		rev += ", modified"
	}
	return fmt.Sprintf("%s (revision %s) %s", v.Module, rev, v.Go)
}

// printVersion is `switchboard version`.
func printVersion(args []string, stdout, stderr io.Writer) int {
	if _, code, ok := parseFlags(newFlags("version"), args, 0, stdout, stderr); !ok {
		return code
	}
	fmt.Fprintln(stdout, "switchboard", BuildVersion())
	return 0
}
