package location

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
	bolt "go.etcd.io/bbolt"
)

// Forwarding is a user's call forwarding: where calls to the user go
// instead of, or after, the user's devices. Each target is a user ("bob"
// or "bob@example.org"), a SIP URI ("sip:..." or "sips:..."), or a
// destination set ("set:voicemail"); "" is no forwarding of that kind.
// It is user data, kept in the location store's backend beside the
// bindings, so that every instance sharing the store sees it.
type Forwarding struct {
	// Unconditional sends every call there, without ringing the user.
	Unconditional string `json:"unconditional,omitempty"`
	// Busy takes the calls the user's devices answer 486 Busy Here.
	Busy string `json:"busy,omitempty"`
	// NoAnswer takes the calls that ring NoAnswerAfter seconds unanswered.
	NoAnswer string `json:"no_answer,omitempty"`
	// NoAnswerAfter is in seconds; 0 is the callforward stage's default.
	NoAnswerAfter int `json:"no_answer_after,omitempty"`
	// Unavailable takes the calls to a user with no binding, or whose
	// devices all answered 480 or 408 (or did not answer at all).
	Unavailable string `json:"unavailable,omitempty"`
}

// IsZero reports whether f forwards nothing.
func (f Forwarding) IsZero() bool { return f == Forwarding{} }

// Validate checks that every target reads as a user, a SIP URI or a set.
func (f Forwarding) Validate() error {
	for _, kt := range f.Kinds() {
		if err := ValidTarget(kt[1]); err != nil {
			return fmt.Errorf("%s: %w", kt[0], err)
		}
	}
	if f.NoAnswerAfter < 0 {
		return fmt.Errorf("no_answer_after: %d is negative", f.NoAnswerAfter)
	}
	return nil
}

// Kinds returns the kinds f forwards, with their targets, in a fixed
// order: unconditional, busy, no_answer, unavailable.
func (f Forwarding) Kinds() [][2]string {
	var out [][2]string
	for _, kt := range [][2]string{{"unconditional", f.Unconditional}, {"busy", f.Busy}, {"no_answer", f.NoAnswer}, {"unavailable", f.Unavailable}} {
		if kt[1] != "" {
			out = append(out, kt)
		}
	}
	return out
}

// ValidTarget checks one forwarding target.
func ValidTarget(target string) error {
	switch {
	case strings.TrimSpace(target) != target || target == "":
		return fmt.Errorf("target %q is empty or has spaces around it", target)
	case strings.HasPrefix(target, "set:"):
		if target == "set:" {
			return errors.New(`target "set:" names no set`)
		}
	case strings.ContainsAny(target, " <>\"\r\n"):
		return fmt.Errorf("target %q has a space, '<', '>' or '\"'", target)
	}
	return nil
}

// Forwards is implemented by every Store: the call forwarding of users.
type Forwards interface {
	// Forwarding returns the forwarding of aor (the zero Forwarding for
	// none).
	Forwarding(aor string) (Forwarding, error)
	// SetForwarding stores f for aor; the zero Forwarding removes it.
	SetForwarding(aor string, f Forwarding) error
	// EachForwarding calls fn with every AOR that has a forwarding, in
	// AOR order.
	EachForwarding(fn func(aor string, f Forwarding) bool) error
}

var (
	_ Forwards = (*Memory)(nil)
	_ Forwards = (*Bolt)(nil)
	_ Forwards = (*Redis)(nil)
)

// forwardMap is Memory's forwarding: rarely written, read on each call.
type forwardMap struct {
	mu sync.RWMutex
	m  map[string]Forwarding
}

// Forwarding returns the forwarding of aor.
func (m *Memory) Forwarding(aor string) (Forwarding, error) {
	m.fwd.mu.RLock()
	defer m.fwd.mu.RUnlock()
	return m.fwd.m[aor], nil
}

// SetForwarding stores f for aor.
func (m *Memory) SetForwarding(aor string, f Forwarding) error {
	m.fwd.mu.Lock()
	defer m.fwd.mu.Unlock()
	if f.IsZero() {
		delete(m.fwd.m, aor)
		return nil
	}
	if m.fwd.m == nil {
		m.fwd.m = map[string]Forwarding{}
	}
	m.fwd.m[aor] = f
	return nil
}

// EachForwarding calls fn with every forwarding, in AOR order.
func (m *Memory) EachForwarding(fn func(aor string, f Forwarding) bool) error {
	m.fwd.mu.RLock()
	all := make(map[string]Forwarding, len(m.fwd.m))
	for k, v := range m.fwd.m {
		all[k] = v
	}
	m.fwd.mu.RUnlock()
	eachSorted(all, fn)
	return nil
}

func eachSorted(all map[string]Forwarding, fn func(aor string, f Forwarding) bool) {
	aors := make([]string, 0, len(all))
	for k := range all {
		aors = append(aors, k)
	}
	sort.Strings(aors)
	for _, k := range aors {
		if !fn(k, all[k]) {
			return
		}
	}
}

// bucketForwards is the bbolt bucket that maps an AOR to its Forwarding
// as JSON. It is made at the first SetForwarding.
var bucketForwards = []byte("forwards")

// Forwarding returns the forwarding of aor.
func (s *Bolt) Forwarding(aor string) (Forwarding, error) {
	var f Forwarding
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketForwards)
		if b == nil {
			return nil
		}
		if v := b.Get([]byte(aor)); v != nil {
			return json.Unmarshal(v, &f)
		}
		return nil
	})
	return f, err
}

// SetForwarding stores f for aor.
func (s *Bolt) SetForwarding(aor string, f Forwarding) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketForwards)
		if err != nil {
			return err
		}
		if f.IsZero() {
			return b.Delete([]byte(aor))
		}
		v, err := json.Marshal(f)
		if err != nil {
			return err
		}
		return b.Put([]byte(aor), v)
	})
}

// EachForwarding calls fn with every forwarding, in AOR order (bbolt's
// key order).
func (s *Bolt) EachForwarding(fn func(aor string, f Forwarding) bool) error {
	all := map[string]Forwarding{}
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketForwards)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			var f Forwarding
			if err := json.Unmarshal(v, &f); err != nil {
				return fmt.Errorf("the forwarding of %q does not decode: %w", k, err)
			}
			all[string(k)] = f
			return nil
		})
	})
	if err != nil {
		return err
	}
	eachSorted(all, fn)
	return nil
}

// forwardKey is the Redis key of aor's forwarding, a JSON string.
func (r *Redis) forwardKey(aor string) string { return r.prefix + "f:" + aor }

// Forwarding returns the forwarding of aor.
func (r *Redis) Forwarding(aor string) (Forwarding, error) {
	ctx, cancel := context.WithTimeout(context.Background(), redisCallTimeout)
	defer cancel()
	var f Forwarding
	v, err := r.client.Get(ctx, r.forwardKey(aor)).Bytes()
	switch {
	case errors.Is(err, redis.Nil):
		return f, nil
	case err != nil:
		return f, r.unavailable(err)
	}
	if err := json.Unmarshal(v, &f); err != nil {
		return f, fmt.Errorf("the forwarding of %q does not decode: %w", aor, err)
	}
	return f, nil
}

// SetForwarding stores f for aor.
func (r *Redis) SetForwarding(aor string, f Forwarding) error {
	ctx, cancel := context.WithTimeout(context.Background(), redisCallTimeout)
	defer cancel()
	var err error
	if f.IsZero() {
		err = r.client.Del(ctx, r.forwardKey(aor)).Err()
	} else {
		var v []byte
		if v, err = json.Marshal(f); err == nil {
			err = r.client.Set(ctx, r.forwardKey(aor), v, 0).Err()
		}
	}
	if err != nil {
		return r.unavailable(err)
	}
	return nil
}

// EachForwarding calls fn with every forwarding, in AOR order, walking
// the keys with SCAN.
func (r *Redis) EachForwarding(fn func(aor string, f Forwarding) bool) error {
	all := map[string]Forwarding{}
	match := escapeGlob(r.prefix) + "f:*"
	var cursor uint64
	for {
		ctx, cancel := context.WithTimeout(context.Background(), redisCallTimeout)
		keys, next, err := r.client.Scan(ctx, cursor, match, redisScanCount).Result()
		var vals []any
		if err == nil && len(keys) > 0 {
			vals, err = r.client.MGet(ctx, keys...).Result()
		}
		cancel()
		if err != nil {
			return r.unavailable(err)
		}
		for i, k := range keys {
			s, ok := vals[i].(string)
			var f Forwarding
			if ok && json.Unmarshal([]byte(s), &f) == nil {
				all[strings.TrimPrefix(k, r.prefix+"f:")] = f
			}
		}
		if cursor = next; cursor == 0 {
			break
		}
	}
	eachSorted(all, fn)
	return nil
}
