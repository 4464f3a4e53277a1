package dialog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisCallTimeout bounds each call to Redis.
const redisCallTimeout = 3 * time.Second

// Redis is a Store kept in Redis, which every Switchboard sharing the
// location store's Redis reads: a dialog recorded by one instance is
// known to the others that sign Record-Routes with the same key (they
// must share it to honour each other's Routes). Each dialog is a key of
// its own, <prefix>d:<scope>:<Call-ID> <caller tag> <callee tag>, holding
// the dialog as JSON, which Redis expires with the dialog. The scope keeps
// apart two proxies on one call's path that share a Redis but not a key:
// each has its own view of the dialog's ends.
type Redis struct {
	client *redis.Client
	prefix string
}

var _ Store = (*Redis)(nil)

// NewRedis returns a store in the Redis at url ("redis://host:6379/0"),
// with every key starting with prefix and scope.
func NewRedis(url, prefix, scope string) (*Redis, error) {
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, err
	}
	return &Redis{client: redis.NewClient(opts), prefix: prefix + "d:" + scope + ":"}, nil
}

func (r *Redis) key(id ID) string {
	return r.prefix + id.CallID + " " + id.CallerTag + " " + id.CalleeTag
}

// Get returns the dialog id names, unless it ended or expired.
func (r *Redis) Get(id ID, now time.Time) (Dialog, bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), redisCallTimeout)
	defer cancel()
	v, err := r.client.Get(ctx, r.key(id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return Dialog{}, false, nil
	}
	if err != nil {
		return Dialog{}, false, fmt.Errorf("dialog store: %w", err)
	}
	var d Dialog
	if err := json.Unmarshal(v, &d); err != nil {
		return Dialog{}, false, fmt.Errorf("dialog store: %s: %w", r.key(id), err)
	}
	if !d.Expires.After(now) {
		return Dialog{}, false, nil
	}
	return d, true, nil
}

// Put stores d under id until d.Expires (relative to now, so that the
// clocks of Redis and of the proxies need not agree).
func (r *Redis) Put(id ID, d Dialog, now time.Time) error {
	return r.set(id, d, now, false)
}

// Replace stores d under id only if Redis still has the dialog (SET XX).
func (r *Redis) Replace(id ID, d Dialog, now time.Time) error {
	return r.set(id, d, now, true)
}

func (r *Redis) set(id ID, d Dialog, now time.Time, existing bool) error {
	ttl := d.Expires.Sub(now)
	if ttl <= 0 {
		return r.Delete(id)
	}
	v, err := json.Marshal(d)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), redisCallTimeout)
	defer cancel()
	args := redis.SetArgs{TTL: ttl}
	if existing {
		args.Mode = "XX"
	}
	err = r.client.SetArgs(ctx, r.key(id), v, args).Err()
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("dialog store: %w", err)
	}
	return nil
}

// Delete ends the dialog.
func (r *Redis) Delete(id ID) error {
	ctx, cancel := context.WithTimeout(context.Background(), redisCallTimeout)
	defer cancel()
	if err := r.client.Del(ctx, r.key(id)).Err(); err != nil {
		return fmt.Errorf("dialog store: %w", err)
	}
	return nil
}

// Sweep does nothing: Redis expires the keys itself.
func (r *Redis) Sweep(time.Time) int { return 0 }

// Close closes the connections to Redis.
func (r *Redis) Close() error { return r.client.Close() }
