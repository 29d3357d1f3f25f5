package main

import (
	"errors"
	"io/fs"
	"strings"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"

	"github.com/pncpki/pncpki/ca"
	"github.com/pncpki/pncpki/store"
)

// Exit codes: a script tells a refusal or a certificate that is not
// valid from a typing mistake, a missing object or a server that is
// down.
const (
	exitOK          = 0
	exitRefused     = 1 // refused, or not valid (revoked, lint violations, a failed check)
	exitUsage       = 2 // unknown command or flag, missing argument, unreadable input file
	exitNotFound    = 3 // no such certificate, CA, tenant, station, ...
	exitUnavailable = 4 // the store or the server does not answer
)

// usageError is a mistake in the command line.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// exitCode classifies an error that a command returned.
func exitCode(err error) int {
	var ee exitError
	var ue usageError
	var pe *fs.PathError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ee):
		return ee.code
	case errors.As(err, &ue), cobraUsage(err):
		return exitUsage
	case ca.CodeOf(err) == ca.CodeNotFound || ca.CodeOf(err) == ca.CodeIssuerUnknown || errors.Is(err, store.ErrNotFound) ||
		connect.CodeOf(err) == connect.CodeNotFound:
		return exitNotFound
	case errors.As(err, &pe):
		return exitUsage
	case store.Unavailable(err) || connect.CodeOf(err) == connect.CodeUnavailable || connect.CodeOf(err) == connect.CodeDeadlineExceeded:
		return exitUnavailable
	}
	return exitRefused
}

// cobraUsage recognises the command-line errors cobra makes itself.
func cobraUsage(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand flag", "required flag(s)", "accepts ", "requires at least", "invalid argument", "flag needs an argument", "bad flag syntax"} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

// markUsage makes the argument checks of cmd and its subcommands return
// usage errors.
func markUsage(cmd *cobra.Command) {
	if args := cmd.Args; args != nil {
		cmd.Args = func(c *cobra.Command, a []string) error {
			if err := args(c, a); err != nil {
				return usageError{err}
			}
			return nil
		}
	}
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	for _, c := range cmd.Commands() {
		markUsage(c)
	}
}
