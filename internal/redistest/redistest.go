// Package redistest gives tests a client of the Redis server named by
// PNCPKI_TEST_REDIS, or skips them when it is not set.
package redistest

import (
	"context"
	"os"
	"testing"

	"github.com/redis/go-redis/v9"
)

// Client connects to PNCPKI_TEST_REDIS (a redis:// URL), checks that it
// answers and closes the client when t ends; without the variable it
// skips t.
func Client(t testing.TB) *redis.Client {
	t.Helper()
	u := os.Getenv("PNCPKI_TEST_REDIS")
	if u == "" {
		t.Skip("PNCPKI_TEST_REDIS not set: skipping Redis tests (.ci/run sets it)")
	}
	opt, err := redis.ParseURL(u)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opt)
	if err := c.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("Redis at %s: %v", u, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
