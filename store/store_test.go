package store_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"

	"github.com/pncpki/pncpki/store"
)

type sqlState string

func (s sqlState) Error() string    { return "database error " + string(s) }
func (s sqlState) SQLState() string { return string(s) }

type closedConn struct{}

func (closedConn) Error() string     { return "conn closed" }
func (closedConn) SafeToRetry() bool { return true }

// TestUnavailable: connection failures and a database's own "going away"
// make the API answer 503; a refused request is not one.
func TestUnavailable(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{&net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, true},
		{fmt.Errorf("put: %w", syscall.ECONNRESET), true},
		{fmt.Errorf("read: %w", io.ErrUnexpectedEOF), true},
		{fmt.Errorf("query: %w", sqlState("57P01")), true},
		{fmt.Errorf("connect: %w", sqlState("57P03")), true},
		{sqlState("08006"), true},
		{fmt.Errorf("acquire: %w", closedConn{}), true},
		{sqlState("23505"), false}, // unique violation: the request's fault
		{store.ErrNotFound, false},
		{errors.New("something else"), false},
		{nil, false},
	} {
		if got := store.Unavailable(tc.err); got != tc.want {
			t.Errorf("Unavailable(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
