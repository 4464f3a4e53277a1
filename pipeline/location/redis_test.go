package location

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/switchboard-sip/switchboard/pipeline/internal/redistest"
)

// These tests run against a real redis-server (see redistest).

// The Redis client's messages about failed dials would drown the output
// of the outage tests.
func init() { SetRedisLogger(slog.New(slog.DiscardHandler)) }

// newTestRedis returns a Redis store on srv with prefix, closed when the
// test ends.
func newTestRedis(t *testing.T, srv *redistest.Server, prefix string) *Redis {
	t.Helper()
	s, err := NewRedis(srv.URL(), prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// rawRedis returns a plain client of srv, to look at the keys.
func rawRedis(t *testing.T, srv *redistest.Server) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: srv.Addr(), Protocol: 2, DisableIdentity: true})
	t.Cleanup(func() { c.Close() })
	return c
}

func TestRedisConformance(t *testing.T) {
	srv := redistest.Start(t)
	var n atomic.Int64
	runStoreTests(t, func(t *testing.T) Store {
		return newTestRedis(t, srv, fmt.Sprintf("conformance%d:", n.Add(1)))
	})
}

// TestRedisKeys checks the key layout and the TTLs that Redis keeps.
func TestRedisKeys(t *testing.T) {
	srv := redistest.Start(t)
	s := newTestRedis(t, srv, "sb:")
	raw := rawRedis(t, srv)
	ctx := context.Background()
	now := time.Now()
	phone := Binding{Contact: "sip:alice@192.0.2.1", Instance: "<urn:uuid:1>", Expires: now.Add(time.Hour)}
	laptop := Binding{Contact: "sip:alice@192.0.2.2", Expires: now.Add(2 * time.Hour)}
	mustUpdate(t, s, "alice", now, set(phone, laptop))

	keys, err := raw.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(keys)
	want := []string{"sb:a:alice", "sb:aors", "sb:b:alice:" + bindingID(phone), "sb:b:alice:" + bindingID(laptop), "sb:t:alice"}
	slices.Sort(want)
	if !slices.Equal(keys, want) {
		t.Fatalf("keys %q, want %q", keys, want)
	}
	if bindingID(phone) != bindingID(Binding{Contact: "sip:other@192.0.2.9", Instance: "<URN:UUID:1>"}) {
		t.Errorf("the binding id of an instance depends on its contact or case")
	}
	ttls := []struct {
		key  string
		want time.Duration
	}{
		{"sb:b:alice:" + bindingID(phone), time.Hour},
		{"sb:b:alice:" + bindingID(laptop), 2 * time.Hour},
		{"sb:a:alice", 2 * time.Hour},
		{"sb:t:alice", 2*time.Hour + TombstoneTTL},
	}
	for _, tc := range ttls {
		got, err := raw.PTTL(ctx, tc.key).Result()
		if err != nil || got > tc.want || got < tc.want-5*time.Second {
			t.Errorf("PTTL %s = %v (%v), want about %v", tc.key, got, err, tc.want)
		}
	}
	members, _ := raw.SMembers(ctx, "sb:a:alice").Result()
	if len(members) != 2 {
		t.Errorf("set members %q, want the 2 binding ids", members)
	}
	score, err := raw.ZScore(ctx, "sb:aors", "alice").Result()
	if err != nil || int64(score) != ceilMillis(laptop.Expires) {
		t.Errorf("alice's score in sb:aors = %v (%v), want %d, when her last binding expires", score, err, ceilMillis(laptop.Expires))
	}

	// Removing every binding leaves the tombstone alone, for a day.
	mustUpdate(t, s, "alice", now, set())
	keys, _ = raw.Keys(ctx, "*").Result()
	if !slices.Equal(keys, []string{"sb:t:alice"}) {
		t.Errorf("keys after removal %q, want only the tombstone", keys)
	}
	if got, _ := raw.PTTL(ctx, "sb:t:alice").Result(); got > TombstoneTTL || got < TombstoneTTL-5*time.Second {
		t.Errorf("tombstone PTTL = %v, want about %v", got, TombstoneTTL)
	}
}

// TestRedisShared checks that two instances on one Redis see each other's
// writes: register via A, look up via B, remove via B, gone on A.
func TestRedisShared(t *testing.T) {
	srv := redistest.Start(t)
	a := newTestRedis(t, srv, "switchboard:")
	b := newTestRedis(t, srv, "switchboard:")
	other := newTestRedis(t, srv, "elsewhere:")
	now := time.Now()
	mustUpdate(t, a, "alice", now, set(Binding{Contact: "sip:alice@192.0.2.1", Expires: now.Add(time.Hour)}))

	got, known, err := b.Lookup("alice", now)
	if err != nil || !known || !slices.Equal(contacts(got), []string{"sip:alice@192.0.2.1"}) {
		t.Errorf("B sees %q (known %v, err %v), want A's binding", contacts(got), known, err)
	}
	if got, known, _ := other.Lookup("alice", now); len(got) != 0 || known {
		t.Errorf("another prefix sees %q (known %v), want nothing", contacts(got), known)
	}
	// A key of another type under the prefix is skipped.
	rawRedis(t, srv).Set(context.Background(), "switchboard:a:weird", "x", 0)
	if aors, n := b.Count(); aors != 1 || n != 1 {
		t.Errorf("B counts %d AORs, %d bindings; want 1, 1", aors, n)
	}
	if n, err := b.AORs(now); n != 1 || err != nil {
		t.Errorf("B's AORs = %d, %v; want 1", n, err)
	}
	if n, err := other.AORs(now); n != 0 || err != nil {
		t.Errorf("another prefix's AORs = %d, %v; want 0", n, err)
	}

	mustUpdate(t, b, "alice", now, set())
	got, known, err = a.Lookup("alice", now)
	if err != nil || len(got) != 0 || !known {
		t.Errorf("A sees %q (known %v, err %v) after B removed it, want none and known", contacts(got), known, err)
	}
	if n, err := a.AORs(now); n != 0 || err != nil {
		t.Errorf("A's AORs after B removed alice = %d, %v; want 0", n, err)
	}
}

// TestRedisConcurrentInstances increments a counter binding from two
// instances at once (run it with -race): no increment may be lost.
func TestRedisConcurrentInstances(t *testing.T) {
	const (
		perInstance = 4
		perWriter   = 50
	)
	srv := redistest.Start(t)
	stores := []*Redis{newTestRedis(t, srv, "sb:"), newTestRedis(t, srv, "sb:")}
	now := time.Now()
	var wg sync.WaitGroup
	for _, s := range stores {
		for range perInstance {
			wg.Go(func() {
				for range perWriter {
					if _, err := s.Update("shared", now, increment(now)); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
	}
	wg.Wait()
	want := uint32(len(stores) * perInstance * perWriter)
	for i, s := range stores {
		got, _, err := s.Lookup("shared", now)
		if err != nil || len(got) != 1 || got[0].CSeq != want {
			t.Errorf("instance %d: counter %+v (err %v), want CSeq %d", i, got, err, want)
		}
	}
}

// TestRedisExpiry checks that Redis removes a binding by itself when it
// expires: looking up with the time of the write finds it gone.
func TestRedisExpiry(t *testing.T) {
	srv := redistest.Start(t)
	s := newTestRedis(t, srv, "sb:")
	raw := rawRedis(t, srv)
	now := time.Now()
	mustUpdate(t, s, "alice", now, set(Binding{Contact: "sip:alice@192.0.2.1", Expires: now.Add(time.Second)}))
	if got, _, _ := s.Lookup("alice", now); len(got) != 1 {
		t.Fatalf("binding not stored: %+v", got)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, known, err := s.Lookup("alice", now)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 0 {
			if !known {
				t.Errorf("alice unknown after her binding expired, want known for %v", TombstoneTTL)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the binding was still in Redis %v after it expired", time.Since(now)-time.Second)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n, err := s.AORs(time.Now()); n != 0 || err != nil {
		t.Errorf("AORs after expiry = %d, %v; want 0", n, err)
	}
	// Redis expired the binding by itself: alice stays in the aors set
	// until a Sweep.
	s.Sweep(time.Now())
	keys, _ := raw.Keys(context.Background(), "*").Result()
	if !slices.Equal(keys, []string{"sb:t:alice"}) {
		t.Errorf("keys after expiry and a sweep %q, want only the tombstone", keys)
	}
}

// TestRedisOutage stops redis-server under a store: every call fails
// promptly with ErrUnavailable, and the store recovers by itself when
// redis-server is back on the same port.
func TestRedisOutage(t *testing.T) {
	srv := redistest.Start(t)
	s := newTestRedis(t, srv, "sb:")
	now := time.Now()
	mustUpdate(t, s, "alice", now, set(Binding{Contact: "sip:alice@192.0.2.1", Expires: now.Add(time.Hour)}))

	srv.Stop()
	checkUnavailable(t, s, now)

	srv.Start()
	waitAvailable(t, s, now)
	// redis-server kept nothing (no persistence): registering again works.
	mustUpdate(t, s, "alice", now, set(Binding{Contact: "sip:alice@192.0.2.3", Expires: now.Add(time.Hour)}))
	if got, _, err := s.Lookup("alice", now); err != nil || !slices.Equal(contacts(got), []string{"sip:alice@192.0.2.3"}) {
		t.Errorf("after recovery: %q, %v", contacts(got), err)
	}
}

// TestRedisStartsFirst starts the store before redis-server: that is not
// an error, calls fail with ErrUnavailable until redis-server answers.
func TestRedisStartsFirst(t *testing.T) {
	srv := redistest.Start(t)
	srv.Stop()
	start := time.Now()
	s, err := NewRedis(srv.URL(), "sb:")
	if err != nil {
		t.Fatalf("NewRedis without a Redis: %v, want no error", err)
	}
	defer s.Close()
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("NewRedis without a Redis took %v", d)
	}
	if err := s.Ping(context.Background()); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Ping = %v, want ErrUnavailable", err)
	}
	now := time.Now()
	checkUnavailable(t, s, now)
	srv.Start()
	waitAvailable(t, s, now)
}

func TestRedisBadURL(t *testing.T) {
	for i, url := range []string{"http://127.0.0.1:6379", "redis://127.0.0.1:6379/notadb", "::"} {
		if s, err := NewRedis(url, "sb:"); err == nil {
			s.Close()
			t.Errorf("test %d: NewRedis(%q) succeeded, want an error", i, url)
		}
	}
}

// checkUnavailable checks that every call of s fails, or comes back empty,
// within 5s, with errors that wrap ErrUnavailable, and never runs fn.
func checkUnavailable(t *testing.T, s *Redis, now time.Time) {
	t.Helper()
	calls := []struct {
		name string
		call func() error
	}{
		{"Lookup", func() error { _, _, err := s.Lookup("alice", now); return err }},
		{"Update", func() error {
			_, err := s.Update("alice", now, func([]Binding) ([]Binding, error) {
				t.Error("Update ran fn without Redis")
				return nil, nil
			})
			return err
		}},
		{"AORs", func() error { _, err := s.AORs(now); return err }},
		{"Count", func() error {
			if aors, n := s.Count(); aors != 0 || n != 0 {
				return fmt.Errorf("Count() = %d, %d without Redis", aors, n)
			}
			return ErrUnavailable
		}},
		{"Sweep", func() error {
			if n := s.Sweep(now); n != 0 {
				return fmt.Errorf("Sweep() = %d without Redis", n)
			}
			return ErrUnavailable
		}},
	}
	for _, c := range calls {
		for range 3 {
			start := time.Now()
			err := c.call()
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("%s took %v without Redis", c.name, d)
			}
			if !errors.Is(err, ErrUnavailable) {
				t.Errorf("%s without Redis: %v, want an error wrapping ErrUnavailable", c.name, err)
			}
		}
	}
}

// waitAvailable waits until Lookup succeeds again, for at most 10s.
func waitAvailable(t *testing.T, s *Redis, now time.Time) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, _, err := s.Lookup("alice", now)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the store did not recover within 10s of redis-server's restart: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
