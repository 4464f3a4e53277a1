package pipeline

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-sip/switchboard/config"
)

// closer is a shared value that records its Close in a log.
type closer struct {
	name   string
	log    *[]string
	fail   bool
	closed atomic.Bool
}

func (p *closer) Close() error {
	p.closed.Store(true)
	*p.log = append(*p.log, p.name)
	if p.fail {
		return errors.New(p.name + " failed to close")
	}
	return nil
}

// TestPool runs LoadOrNew, Release and Close in sequences. A value is
// named by its key and how many values the key had: "a#2" is a's second.
// Key "bad" makes a value whose Close fails, key "nope" fails to construct.
func TestPool(t *testing.T) {
	type step struct {
		op   string // "new", "release" or "close"
		key  string
		want string // the value new gets, or the error any step returns
	}
	tests := []struct {
		name   string
		steps  []step
		closed []string // closed by the end, in order
		held   []string // still held at the end, in construction order
	}{
		{"one user", []step{{"new", "a", "a#1"}, {"release", "a", ""}}, []string{"a#1"}, nil},
		{"users share a value", []step{{"new", "a", "a#1"}, {"new", "a", "a#1"}, {"release", "a", ""}}, nil, []string{"a"}},
		{"the last release closes", []step{{"new", "a", "a#1"}, {"new", "a", "a#1"}, {"release", "a", ""}, {"release", "a", ""}}, []string{"a#1"}, nil},
		{"a value after the last is new", []step{{"new", "a", "a#1"}, {"release", "a", ""}, {"new", "a", "a#2"}}, []string{"a#1"}, []string{"a"}},
		{"keys are apart", []step{{"new", "a", "a#1"}, {"new", "b", "b#1"}, {"release", "a", ""}}, []string{"a#1"}, []string{"b"}},
		{"a failed construct stores nothing", []step{{"new", "nope", "nope fails"}, {"release", "nope", ""}}, nil, nil},
		{"a release of what is not held", []step{{"release", "a", ""}, {"new", "a", "a#1"}}, nil, []string{"a"}},
		{"a failed close", []step{{"new", "bad", "bad#1"}, {"release", "bad", "bad#1 failed to close"}}, []string{"bad#1"}, nil},
		{"close, newest first", []step{{"new", "a", "a#1"}, {"new", "b", "b#1"}, {"new", "a", "a#1"}, {"close", "", ""}, {"release", "a", ""}}, []string{"b#1", "a#1"}, nil},
		{"close reports failures", []step{{"new", "bad", "bad#1"}, {"close", "", "bad#1 failed to close"}}, []string{"bad#1"}, nil},
		{"a value after close is new", []step{{"new", "a", "a#1"}, {"close", "", ""}, {"new", "a", "a#2"}}, []string{"a#1"}, []string{"a"}},
	}
	for i, tc := range tests {
		var pool Pool
		var closed []string
		made := map[string]int{}
		for j, s := range tc.steps {
			var got string
			var err error
			switch s.op {
			case "new":
				var v any
				v, err = pool.LoadOrNew(s.key, func() (any, error) {
					if s.key == "nope" {
						return nil, errors.New("nope fails")
					}
					made[s.key]++
					return &closer{name: fmt.Sprintf("%s#%d", s.key, made[s.key]), log: &closed, fail: s.key == "bad"}, nil
				})
				if err == nil {
					got = v.(*closer).name
				}
			case "release":
				err = pool.Release(s.key)
			case "close":
				err = pool.Close()
			}
			if err != nil {
				got = err.Error()
			}
			if got != s.want {
				t.Errorf("test %d (%s): step %d (%s %s): got %q, want %q", i, tc.name, j, s.op, s.key, got, s.want)
			}
		}
		if strings.Join(closed, ",") != strings.Join(tc.closed, ",") {
			t.Errorf("test %d (%s): closed %q, want %q", i, tc.name, closed, tc.closed)
		}
		var held []string
		pool.Range(func(key string, _ any) { held = append(held, key) })
		if strings.Join(held, ",") != strings.Join(tc.held, ",") {
			t.Errorf("test %d (%s): held %q, want %q", i, tc.name, held, tc.held)
		}
		for _, k := range tc.held {
			if _, ok := pool.Load(k); !ok {
				t.Errorf("test %d (%s): Load(%q) found nothing", i, tc.name, k)
			}
		}
	}
}

// life is a shared value that counts the values of its key alive at once.
type life struct {
	alive  *atomic.Int64
	closed atomic.Bool
}

func (l *life) Close() error {
	l.closed.Store(true)
	l.alive.Add(-1)
	return nil
}

// TestPoolConcurrent takes and releases one key from many goroutines (run
// it with -race): no value is handed out after its Close, and a key's new
// value is constructed only once the old one is closed.
func TestPoolConcurrent(t *testing.T) {
	var pool Pool
	var alive, made atomic.Int64
	construct := func() (any, error) {
		made.Add(1)
		if n := alive.Add(1); n != 1 {
			t.Errorf("%d values of one key alive at once", n)
		}
		return &life{alive: &alive}, nil
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 500 {
				v, err := pool.LoadOrNew("k", construct)
				if err != nil {
					t.Error(err)
					return
				}
				if v.(*life).closed.Load() {
					t.Error("a closed value was handed out")
				}
				if err := pool.Release("k"); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if n := alive.Load(); n != 0 {
		t.Errorf("%d values alive after the last release", n)
	}
	if made.Load() == 0 {
		t.Error("nothing was constructed")
	}
}

// TestPoolWaitsForConstruct: a LoadOrNew of a key whose value is being
// constructed waits for it and gets the same value; construct runs once.
func TestPoolWaitsForConstruct(t *testing.T) {
	var pool Pool
	var made atomic.Int64
	unblock := make(chan struct{})
	construct := func() (any, error) {
		made.Add(1)
		<-unblock
		return new(int), nil
	}
	got := make(chan any, 2)
	for range 2 {
		go func() {
			v, _ := pool.LoadOrNew("k", construct)
			got <- v
		}()
	}
	deadline := time.Now().Add(5 * time.Second)
	for refs(&pool, "k") < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the second LoadOrNew never came")
		}
		time.Sleep(time.Millisecond)
	}
	close(unblock)
	a, b := <-got, <-got
	if a == nil || a != b {
		t.Errorf("got %v and %v, want one value", a, b)
	}
	if n := made.Load(); n != 1 {
		t.Errorf("constructed %d times, want 1", n)
	}
}

// refs returns the users the pool counts for key.
func refs(p *Pool, key string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if u, ok := p.uses[key]; ok {
		return u.refs
	}
	return 0
}

// sharer is a test stage that takes the value under Key from the pool,
// and fails its Provision after that when Fail is set.
type sharer struct {
	Key   string `toml:"key"`
	Fail  bool   `toml:"fail_provision"`
	value *closer
}

var sharerClosed []string

func (s *sharer) Provision(b *BuildContext) error {
	v, err := Share(b, s.Key, func() (*closer, error) { return &closer{name: s.Key, log: &sharerClosed}, nil })
	if err != nil {
		return err
	}
	s.value = v
	if s.Fail {
		return errors.New("fail_provision: asked to fail")
	}
	return nil
}

func init() {
	Register(StageInfo{Name: "test_share", Description: "test", New: func() Stage { return new(sharer) }})
}

// TestShare: a reload that keeps a stage keeps its shared value, the last
// pipeline's Cleanup closes it, and a failed build releases what it took.
func TestShare(t *testing.T) {
	svc := testServices()
	defer svc.Close()
	sharerClosed = nil
	cfg := func(toml string) *config.File {
		c, err := config.Parse("c.toml", []byte(toml))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	one := cfg("[[stage]]\nuse = 'test_share'\nkey = 'test/one'")
	p1, err := Build(one, svc)
	if err != nil {
		t.Fatal(err)
	}
	p2, err := Build(one, svc)
	if err != nil {
		t.Fatal(err)
	}
	if a, b := p1.stages[0].stage.(*sharer).value, p2.stages[0].stage.(*sharer).value; a != b {
		t.Error("the reload made a new value")
	}
	if _, err := Build(cfg("[[stage]]\nuse = 'test_share'\nkey = 'test/two'\nfail_provision = true"), svc); err == nil {
		t.Fatal("a failing Provision built")
	}
	if err := p1.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(sharerClosed, ","); got != "test/two" {
		t.Errorf("closed %q after the failed build and the old pipeline, want test/two", got)
	}
	if err := p2.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if err := p2.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(sharerClosed, ","); got != "test/two,test/one" {
		t.Errorf("closed %q after the last pipeline, want test/two,test/one", got)
	}

	// A value of another type under the key is an error, not a panic.
	b := &BuildContext{Services: svc, Pipeline: &Pipeline{Services: svc}}
	if _, err := Share(b, "test/int", func() (*int, error) { return new(int), nil }); err != nil {
		t.Fatal(err)
	}
	_, err = Share(b, "test/int", func() (*closer, error) { return nil, nil })
	if want := `shared value "test/int" is a *int, not a *pipeline.closer`; err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
	if err := b.Pipeline.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if _, ok := svc.Shared.Load("test/int"); ok {
		t.Error("the pipeline's Cleanup left its values held")
	}
}
