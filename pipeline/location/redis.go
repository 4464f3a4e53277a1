package location

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	mrand "math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// ErrUnavailable is wrapped into the errors of a Store that cannot reach
// its backend (Redis is down, unreachable or refusing): the request may
// succeed later, so callers answer 503 rather than 500 or a wrong answer.
// Test it with errors.Is.
var ErrUnavailable = errors.New("location store unavailable")

// Limits of the Redis store.
const (
	// redisCallTimeout bounds each Lookup and Update, retries included,
	// and each batch of Count and Sweep.
	redisCallTimeout = 3 * time.Second
	// redisUpdateAttempts is how many times Update tries when other
	// writers change the AOR between its read and its write.
	redisUpdateAttempts = 20
	// redisSweepEvery is how often Sweep really walks the AORs.
	redisSweepEvery = time.Minute
	// redisScanCount is the COUNT hint of SCAN in Count and Sweep.
	redisScanCount = 500
)

// Redis is a Store kept in Redis, which several Switchboard instances can
// share. Redis 7.0 has no expiry per hash field, so each binding is a key
// of its own, and Redis expires it:
//
//	<prefix>b:<aor>:<id>  a binding as JSON, with its place in the AOR's
//	                      list; its TTL ends when the binding expires.
//	                      <id> is a hash of the +sip.instance, or else of
//	                      the Contact URI.
//	<prefix>a:<aor>       the set of the AOR's binding ids; ids whose key
//	                      expired are pruned when read. Its TTL ends with
//	                      the AOR's last binding.
//	<prefix>t:<aor>       a hash: v (a version token that every write
//	                      changes), gone (when the AOR lost its last
//	                      binding by removal, Unix ns) and last (when its
//	                      latest binding expires, Unix ns). It is what makes
//	                      the AOR known, and lives until TombstoneTTL after
//	                      the AOR lost, or will lose, its last binding.
//	<prefix>aors          a sorted set of the AORs with bindings, each
//	                      scored with when its latest binding expires
//	                      (Unix ms): AORs counts the members scored after
//	                      its now, Sweep removes the others.
//
// TTLs are set relative to the now given to Update (PEXPIRE, not
// PEXPIREAT), so the clocks of the Redis host and of the proxies need not
// agree; the proxies' clocks must, as Lookup compares Expires with its now.
//
// Lookup is one Lua script (one round trip, atomic). Update reads with
// that script, runs fn, and writes with a second script that checks the
// version token first (compare-and-set): a write that lost a race with
// another instance is retried on the new bindings, so Update is atomic per
// AOR across every instance sharing the Redis; within one instance,
// Updates of an AOR also take a lock, so only other instances race. fn
// may therefore run more than once, and must only compute.
//
// Every error that comes from Redis, a lost connection included, wraps
// ErrUnavailable; calls never answer from stale data. go-redis retries
// with backoff, within redisCallTimeout. Keep Redis's maxmemory-policy at
// noeviction: an evicted key is a lost registration.
//
// The aors set is written by the same script as the bindings, so AORs is
// exact (to the millisecond) across every instance. A Switchboard older
// than the set does not keep it: an AOR it wrote is counted from its next
// write by a newer one, and while old and new instances share a Redis,
// the count is off by what the old ones write.
type Redis struct {
	client *redis.Client
	addr   string
	prefix string

	seed  maphash.Seed
	locks [shardCount]sync.Mutex

	sweeps sweepGate

	// clock is what Count takes as "now"; tests replace it.
	clock func() time.Time
}

var _ Store = (*Redis)(nil)

// redisBinding is the JSON value of a binding key: the binding and its
// place in the AOR's list.
type redisBinding struct {
	Seq int `json:"seq"`
	Binding
}

// redisState is what one read of an AOR found.
type redisState struct {
	// version is the token of the last write, "" if the AOR is unknown.
	version string
	// gone and last are the fields of the t: key.
	gone, last time.Time
	// bindings are in stored order; some may be expired by now.
	bindings []Binding
	// pruned is how many ids the read removed because their key expired.
	pruned int
}

// readScript returns the t: fields, how many stale ids it pruned, and the
// binding JSONs of an AOR.
//
// KEYS: the a: set, the t: hash. ARGV: the prefix of the b: keys.
var readScript = redis.NewScript(`
local meta = redis.call('HMGET', KEYS[2], 'v', 'gone', 'last')
local out = {meta[1] or '', meta[2] or '0', meta[3] or '0', '0'}
local pruned = 0
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local v = redis.call('GET', ARGV[1] .. id)
  if v then
    out[#out + 1] = v
  else
    redis.call('SREM', KEYS[1], id)
    pruned = pruned + 1
  end
end
out[4] = tostring(pruned)
return out
`)

// writeScript replaces the bindings of an AOR if its version is still the
// one read; it returns 1 if it wrote (or had already written this very
// version: go-redis may retry a script whose reply was lost), 0 if
// another write came first.
//
// KEYS: the a: set, the t: hash, the aors set. ARGV: expected version,
// new version, prefix of the b: keys, gone, last, TTL of t: in ms (0
// deletes it), TTL of a: in ms, the AOR's score in the aors set, the
// AOR, then id, JSON, TTL in ms for each binding.
var writeScript = redis.NewScript(`
local v = redis.call('HGET', KEYS[2], 'v') or ''
if v == ARGV[2] then return 1 end
if v ~= ARGV[1] then return 0 end
local keep = {}
for i = 10, #ARGV, 3 do keep[ARGV[i]] = true end
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if not keep[id] then redis.call('DEL', ARGV[3] .. id) end
end
redis.call('DEL', KEYS[1])
for i = 10, #ARGV, 3 do
  redis.call('SET', ARGV[3] .. ARGV[i], ARGV[i + 1], 'PX', ARGV[i + 2])
  redis.call('SADD', KEYS[1], ARGV[i])
end
if #ARGV >= 10 then
  redis.call('PEXPIRE', KEYS[1], ARGV[7])
  redis.call('ZADD', KEYS[3], ARGV[8], ARGV[9])
else
  redis.call('ZREM', KEYS[3], ARGV[9])
end
if tonumber(ARGV[6]) > 0 then
  redis.call('HSET', KEYS[2], 'v', ARGV[2], 'gone', ARGV[4], 'last', ARGV[5])
  redis.call('PEXPIRE', KEYS[2], ARGV[6])
else
  redis.call('DEL', KEYS[2])
end
return 1
`)

// RedisOptions returns the client options for the Redis at url that every
// Switchboard client of Redis uses (the location and the dialog stores):
// it retries twice with a backoff of 8 to 256 ms, and dials, reads and
// writes with a 1s timeout (the url's query, max_retries, dial_timeout,
// read_timeout..., overrides these), with plain RESP2 commands.
func RedisOptions(url string) (*redis.Options, error) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("redis url: %w", err)
	}
	if opt.MaxRetries == 0 {
		opt.MaxRetries = 2
	}
	if opt.MinRetryBackoff == 0 {
		opt.MinRetryBackoff = 8 * time.Millisecond
	}
	if opt.MaxRetryBackoff == 0 {
		opt.MaxRetryBackoff = 256 * time.Millisecond
	}
	if opt.DialTimeout == 0 {
		opt.DialTimeout = time.Second
	}
	if opt.ReadTimeout == 0 {
		opt.ReadTimeout = time.Second
	}
	if opt.WriteTimeout == 0 {
		opt.WriteTimeout = time.Second
	}
	if opt.PoolTimeout == 0 {
		opt.PoolTimeout = time.Second
	}
	// One dial per attempt: the command retries above already back off.
	opt.DialerRetries = 1
	opt.ContextTimeoutEnabled = true
	// RESP2 and no CLIENT SETINFO or maintenance notifications: plain
	// commands that every Redis since 5 understands.
	opt.Protocol = 2
	opt.DisableIdentity = true
	opt.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}

	return opt, nil
}

// NewRedis returns a Store on the Redis at url ("redis://host:6379/0",
// "rediss://..." or "unix:///path"), whose keys all start with prefix.
// Only a malformed url is an error: NewRedis pings Redis once, but a
// Redis that does not answer yet is not fatal, so that the proxy can start
// before it; until it answers, every call fails with ErrUnavailable. Use
// Ping to report it.
// Its client's options are RedisOptions's.
func NewRedis(url, prefix string) (*Redis, error) {
	opt, err := RedisOptions(url)
	if err != nil {
		return nil, fmt.Errorf("location store: %w", err)
	}
	r := &Redis{
		client: redis.NewClient(opt),
		addr:   opt.Addr,
		prefix: prefix,
		seed:   maphash.MakeSeed(),
		sweeps: sweepGate{every: redisSweepEvery},
		clock:  time.Now,
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = r.Ping(ctx)
	return r, nil
}

// Ping checks that Redis answers; its error wraps ErrUnavailable.
func (r *Redis) Ping(ctx context.Context) error {
	if err := r.client.Ping(ctx).Err(); err != nil {
		return r.unavailable(err)
	}
	return nil
}

// Lookup returns the live bindings of aor at now, and whether the AOR is
// known: it has live bindings, or lost its last one less than
// TombstoneTTL before now. It is one round trip.
func (r *Redis) Lookup(aor string, now time.Time) ([]Binding, bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), redisCallTimeout)
	defer cancel()
	st, err := r.read(ctx, aor)
	if err != nil {
		return nil, false, err
	}
	if live := liveCopies(st.bindings, now); len(live) > 0 {
		return live, true, nil
	}
	return nil, known(st.goneAt(), now), nil
}

// Update passes the live bindings of aor to fn and stores what fn returns,
// minus the bindings already expired at now, atomically with respect to
// every Update of the AOR by any instance sharing the Redis: when another
// write comes between the read and the write, it reads again and runs fn
// again. When fn leaves no binding of an AOR that had some, the AOR is
// remembered as known for TombstoneTTL.
func (r *Redis) Update(aor string, now time.Time, fn func(current []Binding) ([]Binding, error)) ([]Binding, error) {
	mu := &r.locks[maphash.String(r.seed, aor)%shardCount]
	mu.Lock()
	defer mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), redisCallTimeout)
	defer cancel()
	for attempt := 1; ; attempt++ {
		st, err := r.read(ctx, aor)
		if err != nil {
			return nil, err
		}
		current := liveCopies(st.bindings, now)
		next, err := fn(current)
		if err != nil {
			return nil, err
		}
		stored := storable(aor, now, next)
		var wrote bool
		switch {
		case len(stored) > 0:
			wrote, err = r.write(ctx, aor, st.version, now, stored, st.gone)
		case st.version == "" && len(st.bindings) == 0:
			// Nothing was, nothing is: no tombstone for an AOR never seen.
			return nil, nil
		default:
			wrote, err = r.write(ctx, aor, st.version, now, nil, lostAt(st.goneAt(), current, now))
		}
		switch {
		case err != nil:
			return nil, err
		case wrote:
			return liveCopies(stored, now), nil
		case attempt == redisUpdateAttempts:
			return nil, fmt.Errorf("%w: redis %s: bindings of %q: %d writes lost to other writers in a row", ErrUnavailable, r.addr, aor, attempt)
		}
		time.Sleep(mrand.N(time.Duration(attempt) * time.Millisecond))
	}
}

// Sweep tidies up after Redis, which expires the bindings itself: at most
// once per redisSweepEvery (or when now goes back), it removes the AORs
// whose bindings all expired by now from the aors set, walks the AORs
// with SCAN, prunes the ids whose binding key expired, deletes the
// bindings that expired by now but that Redis still holds (its clock runs
// behind), and returns how many bindings it removed of either kind. Its
// cost is one SCAN round trip and one script run per AOR, in batches of
// redisScanCount. A Redis that does not answer makes it return 0.
func (r *Redis) Sweep(now time.Time) int {
	if !r.sweeps.enter(now) {
		return 0
	}
	defer r.sweeps.leave()
	ctx, cancel := context.WithTimeout(context.Background(), redisCallTimeout)
	err := r.client.ZRemRangeByScore(ctx, r.aorsKey(), "-inf", strconv.FormatInt(now.UnixMilli(), 10)).Err()
	cancel()
	if err != nil {
		return 0
	}
	removed := 0
	r.scan(func(aor string, st *redisState) {
		removed += st.pruned
		kept := liveCopies(st.bindings, now)
		if len(kept) == len(st.bindings) {
			return
		}
		gone := st.gone
		if len(kept) == 0 {
			gone = st.goneAt()
		}
		ctx, cancel := context.WithTimeout(context.Background(), redisCallTimeout)
		defer cancel()
		// A lost race means another write replaced these bindings.
		if wrote, err := r.write(ctx, aor, st.version, now, kept, gone); err == nil && wrote {
			removed += len(st.bindings) - len(kept)
		}
	})
	return removed
}

// Count returns the number of AORs with live bindings and the number of
// live bindings, at the present time. It walks every AOR with SCAN (one
// script run per AOR, in batches of redisScanCount), so it is meant for
// metrics and the admin API, not for each request. A Redis that does not
// answer makes it return what it counted so far.
func (r *Redis) Count() (aors, bindings int) {
	now := r.clock()
	seen := map[string]bool{}
	r.scan(func(aor string, st *redisState) {
		// SCAN may return a key twice.
		if seen[aor] {
			return
		}
		seen[aor] = true
		if n := countLive(st.bindings, now); n > 0 {
			aors++
			bindings += n
		}
	})
	return aors, bindings
}

// AORs returns the number of AORs with live bindings at now, to the
// millisecond: the members of the aors set scored after now. It is one
// round trip.
func (r *Redis) AORs(now time.Time) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), redisCallTimeout)
	defer cancel()
	n, err := r.client.ZCount(ctx, r.aorsKey(), "("+strconv.FormatInt(now.UnixMilli(), 10), "+inf").Result()
	if err != nil {
		return 0, r.unavailable(err)
	}
	return int(n), nil
}

// Each calls fn for every AOR with live bindings, walking the AORs with
// SCAN as Count does; an AOR that SCAN returns twice is passed once.
func (r *Redis) Each(now time.Time, fn func(aor string, bindings []Binding) bool) error {
	seen := map[string]bool{}
	stop := false
	return r.scan(func(aor string, st *redisState) {
		if stop || seen[aor] {
			return
		}
		seen[aor] = true
		if bs := liveCopies(st.bindings, now); len(bs) > 0 {
			stop = !fn(aor, bs)
		}
	})
}

// Close closes the connections to Redis.
func (r *Redis) Close() error { return r.client.Close() }

// shared marks the store as shared by several nodes (see Shared).
func (*Redis) shared() {}

// SetRedisLogger sends the Redis client's own messages (go-redis writes
// one to stderr for each failed dial, for example) to log, at debug level:
// the errors that matter reach the callers as ErrUnavailable. The Redis
// client's logger is process-wide: call this once, from main.
func SetRedisLogger(log *slog.Logger) { redis.SetLogger(redisLogger{log}) }

// redisLogger adapts a slog.Logger to the Redis client's logger.
type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.DebugContext(ctx, fmt.Sprintf(format, v...), "component", "redis")
}

// Key names.
func (r *Redis) setKey(aor string) string        { return r.prefix + "a:" + aor }
func (r *Redis) metaKey(aor string) string       { return r.prefix + "t:" + aor }
func (r *Redis) bindingPrefix(aor string) string { return r.prefix + "b:" + aor + ":" }
func (r *Redis) aorsKey() string                 { return r.prefix + "aors" }

// read runs readScript for aor.
func (r *Redis) read(ctx context.Context, aor string) (*redisState, error) {
	res, err := readScript.Run(ctx, r.client, []string{r.setKey(aor), r.metaKey(aor)}, r.bindingPrefix(aor)).StringSlice()
	if err != nil {
		return nil, r.unavailable(err)
	}
	return r.parseState(aor, res)
}

// parseState decodes what readScript returned.
func (r *Redis) parseState(aor string, res []string) (*redisState, error) {
	if len(res) < 4 {
		return nil, fmt.Errorf("location store: redis %s: bindings of %q: short reply", r.addr, aor)
	}
	st := &redisState{version: res[0], gone: fromNanos(res[1]), last: fromNanos(res[2])}
	st.pruned, _ = strconv.Atoi(res[3])
	stored := make([]redisBinding, 0, len(res)-4)
	for _, v := range res[4:] {
		var rb redisBinding
		if err := json.Unmarshal([]byte(v), &rb); err != nil {
			return nil, fmt.Errorf("location store: redis %s: a binding of %q: %w", r.addr, aor, err)
		}
		stored = append(stored, rb)
	}
	slices.SortStableFunc(stored, func(a, b redisBinding) int { return a.Seq - b.Seq })
	for _, rb := range stored {
		st.bindings = append(st.bindings, rb.Binding)
	}
	return st, nil
}

// write runs writeScript: the bindings of aor become bs (all live at now),
// and its tombstone time gone, if its version is still expect. It
// reports whether it wrote.
func (r *Redis) write(ctx context.Context, aor, expect string, now time.Time, bs []Binding, gone time.Time) (bool, error) {
	var last time.Time
	for _, b := range bs {
		if b.Expires.After(last) {
			last = b.Expires
		}
	}
	metaTTL := int64(0)
	if until := later(gone, last).Add(TombstoneTTL); until.After(now) {
		metaTTL = ttlMillis(until, now)
	}
	args := []any{expect, newVersion(), r.bindingPrefix(aor), nanos(gone), nanos(last), metaTTL, ttlMillis(last, now), ceilMillis(last), aor}
	used := map[string]bool{}
	for i, b := range bs {
		data, err := json.Marshal(redisBinding{Seq: i, Binding: b})
		if err != nil {
			return false, fmt.Errorf("location store: binding %q of %q: %w", b.Contact, aor, err)
		}
		id := bindingID(b)
		for n := 2; used[id]; n++ {
			id = bindingID(b) + "-" + strconv.Itoa(n)
		}
		used[id] = true
		args = append(args, id, data, ttlMillis(b.Expires, now))
	}
	n, err := writeScript.Run(ctx, r.client, []string{r.setKey(aor), r.metaKey(aor), r.aorsKey()}, args...).Int()
	if err != nil {
		return false, r.unavailable(err)
	}
	return n == 1, nil
}

// scan calls fn for each AOR that has a binding set, with what readScript
// found; it stops at the first error.
func (r *Redis) scan(fn func(aor string, st *redisState)) error {
	ctx, cancel := context.WithTimeout(context.Background(), redisCallTimeout)
	err := readScript.Load(ctx, r.client).Err()
	cancel()
	if err != nil {
		return r.unavailable(err)
	}
	match := escapeGlob(r.prefix) + "a:*"
	var cursor uint64
	for {
		ctx, cancel := context.WithTimeout(context.Background(), redisCallTimeout)
		keys, next, err := r.client.Scan(ctx, cursor, match, redisScanCount).Result()
		var cmds []*redis.Cmd
		if err == nil && len(keys) > 0 {
			_, err = r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
				for _, k := range keys {
					aor := strings.TrimPrefix(k, r.prefix+"a:")
					cmds = append(cmds, readScript.EvalSha(ctx, p, []string{r.setKey(aor), r.metaKey(aor)}, r.bindingPrefix(aor)))
				}
				return nil
			})
		}
		cancel()
		// A reply that is an error (a key of another type under the
		// prefix, say) skips one AOR; any other error ends the walk.
		var reply redis.Error
		if err != nil && !errors.As(err, &reply) {
			return r.unavailable(err)
		}
		for i, k := range keys {
			aor := strings.TrimPrefix(k, r.prefix+"a:")
			res, err := cmds[i].StringSlice()
			if err != nil {
				continue
			}
			if st, err := r.parseState(aor, res); err == nil {
				fn(aor, st)
			}
		}
		if cursor = next; cursor == 0 {
			return nil
		}
	}
}

// unavailable wraps an error of the Redis client.
func (r *Redis) unavailable(err error) error {
	return fmt.Errorf("%w: redis %s: %w", ErrUnavailable, r.addr, err)
}

// goneAt returns when the AOR lost, or will lose, its last binding.
func (st *redisState) goneAt() time.Time { return later(st.gone, st.last) }

// bindingID names the key of a binding: a hash of its +sip.instance (which
// the registrar matches without case), or else of its Contact URI.
func bindingID(b Binding) string {
	name := "contact:" + b.Contact
	if b.Instance != "" {
		name = "instance:" + strings.ToLower(b.Instance)
	}
	sum := sha256.Sum256([]byte(name))
	return hex.EncodeToString(sum[:8])
}

// newVersion returns a random version token.
func newVersion() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// ttlMillis returns the milliseconds from now until t, rounded up, and at
// least 1.
func ttlMillis(t, now time.Time) int64 {
	ms := (t.Sub(now) + time.Millisecond - 1) / time.Millisecond
	return max(int64(ms), 1)
}

// ceilMillis returns t in Unix milliseconds, rounded up, so that an AOR
// scored with the expiry of its latest binding counts as live at every
// now (in milliseconds, rounded down) before that expiry.
func ceilMillis(t time.Time) int64 {
	ms := t.UnixMilli()
	if t.After(time.UnixMilli(ms)) {
		ms++
	}
	return ms
}

// nanos and fromNanos encode a time for the t: hash; "0" is the zero time.
func nanos(t time.Time) string {
	if t.IsZero() {
		return "0"
	}
	return strconv.FormatInt(t.UnixNano(), 10)
}

func fromNanos(s string) time.Time {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// later returns the later of a and b.
func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// escapeGlob escapes the characters that SCAN's MATCH pattern treats
// specially.
func escapeGlob(s string) string {
	var b strings.Builder
	for _, c := range s {
		if strings.ContainsRune(`*?[]\`, c) {
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	return b.String()
}
