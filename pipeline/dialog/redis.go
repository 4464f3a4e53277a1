package dialog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/switchboard-sip/switchboard/pipeline/location"
)

// Limits of the Redis store.
const (
	// redisCallTimeout bounds each call, retries included.
	redisCallTimeout = 3 * time.Second
	// redisUpdateAttempts is how many times Update tries when other
	// instances change the dialog between its read and its write.
	redisUpdateAttempts = 20
)

// Redis is a Store kept in Redis, which every Switchboard sharing the
// location store's Redis reads: a dialog recorded by one instance is
// known to the others that sign Record-Routes with the same key (they
// must share it to honour each other's Routes). Each dialog is a key of
// its own, <prefix>d:<scope>:<Call-ID> <tag> <tag>, holding
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
	opts, err := location.RedisOptions(url)
	if err != nil {
		return nil, err
	}
	return &Redis{client: redis.NewClient(opts), prefix: prefix + "d:" + scope + ":"}, nil
}

func (r *Redis) key(id ID) string {
	return r.prefix + id.CallID + " " + id.Tags[0] + " " + id.Tags[1]
}

// Get returns the dialog id names, unless it expired by now (by the
// proxy's clock: the dialog's expiry is stored with it; Redis's own
// expiry of the key only frees the memory).
func (r *Redis) Get(id ID, now time.Time) (Dialog, bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), redisCallTimeout)
	defer cancel()
	d, found, err := r.read(ctx, r.client, r.key(id), now)
	if err != nil {
		return Dialog{}, false, fmt.Errorf("dialog store: %w", err)
	}
	return d, found, nil
}

// Update changes the dialog id names with fn: it reads the key under
// WATCH and writes it in a MULTI that fails when another instance wrote
// it meanwhile; then it tries again, on what that one wrote.
func (r *Redis) Update(id ID, now time.Time, fn func(d *Dialog, found bool) bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), redisCallTimeout)
	defer cancel()
	key := r.key(id)
	for range redisUpdateAttempts {
		err := r.client.Watch(ctx, func(tx *redis.Tx) error {
			d, found, err := r.read(ctx, tx, key, now)
			if err != nil || !fn(&d, found) {
				return err
			}
			ttl := d.Expires.Sub(now)
			if ttl <= 0 {
				_, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error { return p.Del(ctx, key).Err() })
				return err
			}
			v, err := json.Marshal(d)
			if err != nil {
				return err
			}
			_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error { return p.Set(ctx, key, v, ttl).Err() })
			return err
		}, key)
		if !errors.Is(err, redis.TxFailedErr) {
			if err != nil {
				return fmt.Errorf("dialog store: %w", err)
			}
			return nil
		}
	}
	return fmt.Errorf("dialog store: %s: changed by others %d times in a row", key, redisUpdateAttempts)
}

// read returns the dialog stored under key, unless it expired by now.
func (r *Redis) read(ctx context.Context, c redis.Cmdable, key string, now time.Time) (Dialog, bool, error) {
	v, err := c.Get(ctx, key).Bytes()
	if errors.Is(err, redis.Nil) {
		return Dialog{}, false, nil
	}
	if err != nil {
		return Dialog{}, false, err
	}
	var d Dialog
	if err := json.Unmarshal(v, &d); err != nil {
		return Dialog{}, false, fmt.Errorf("%s: %w", key, err)
	}
	if !d.Expires.After(now) {
		return Dialog{}, false, nil
	}
	return d, true, nil
}

// Delete forgets the dialog.
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
