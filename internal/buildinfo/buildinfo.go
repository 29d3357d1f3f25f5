// Package buildinfo says which pncpki a binary is: the module version and
// the VCS revision the Go toolchain recorded in it, for `pncd version`,
// `pncctl version`, /healthz and the pncpki_build_info metric.
package buildinfo

import (
	"runtime"
	"runtime/debug"
)

// Info is a binary's version.
type Info struct {
	Version  string `json:"version"`            // module version, "(devel)" for a local build
	Revision string `json:"revision,omitempty"` // VCS commit, "+dirty" when modified
	Time     string `json:"time,omitempty"`     // commit time
	Go       string `json:"go"`
}

// Read returns the version recorded in the running binary. A build can
// set the version with -ldflags "-X github.com/pncpki/pncpki/internal/buildinfo.version=v1.2.3"
// when the toolchain has none to record (a build outside a module cache).
func Read() Info {
	i := Info{Version: version, Go: runtime.Version()}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return i
	}
	if i.Version == "" {
		i.Version = bi.Main.Version
	}
	dirty := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			i.Revision = s.Value
		case "vcs.time":
			i.Time = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if dirty && i.Revision != "" {
		i.Revision += "+dirty"
	}
	if i.Version == "" {
		i.Version = "(devel)"
	}
	return i
}

// version is set by the linker when the build passes one.
var version string

// String is the version on one line.
func (i Info) String() string {
	s := "pncpki " + i.Version
	if i.Revision != "" {
		s += " (" + i.Revision
		if i.Time != "" {
			s += ", " + i.Time
		}
		s += ")"
	}
	return s + " " + i.Go
}
