package keepalive

import (
	"time"

	"github.com/switchboard-sip/switchboard/pipeline/location"
)

// Restorer makes the flow that pings a stored binding after a restart,
// with the settings of the registrar that offers it. It returns false for
// a binding that is not to be pinged: not from behind NAT, not over UDP,
// or held by another node.
type Restorer func(b location.Binding) (Flow, bool)

// restoreRetry is how long the Pinger waits before it reads the location
// store again after it failed (a Redis not reachable yet).
const restoreRetry = 5 * time.Second

// Restore offers restore to rebuild the flows of a Pinger that just
// started, whose list, kept in memory, a restart emptied: Run reads the
// location store once, when a restorer is first offered (again every
// restoreRetry while the store fails), and pings every binding restore
// takes as if it had just registered, the first pings spread over an
// interval. The newest restorer offered is the one used; withdraw takes
// this one back (its registrar was cleaned up).
func (p *Pinger) Restore(restore Restorer) (withdraw func()) {
	r := &restore
	p.mu.Lock()
	p.restorers = append(p.restorers, r)
	p.mu.Unlock()
	p.poke()
	return func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		for i, o := range p.restorers {
			if o == r {
				p.restorers = append(p.restorers[:i], p.restorers[i+1:]...)
				break
			}
		}
	}
}

// restore rebuilds the flows from the location store at now, once. It
// returns when to try again after a failure, zero otherwise.
func (p *Pinger) restore(now time.Time) (retry time.Time) {
	p.mu.Lock()
	if p.restored || len(p.restorers) == 0 {
		p.mu.Unlock()
		return time.Time{}
	}
	if now.Before(p.retryAt) {
		p.mu.Unlock()
		return p.retryAt
	}
	restore := *p.restorers[len(p.restorers)-1]
	// The AORs that register while the store is read are synced with
	// what they wrote: the store's copy of them may be older.
	p.synced = map[string]bool{}
	p.mu.Unlock()

	var flows []Flow
	var err error
	if store := p.store(); store != nil {
		err = store.Each(now, func(aor string, bindings []location.Binding) bool {
			for _, b := range bindings {
				if f, ok := restore(b); ok {
					f.AOR = aor
					flows = append(flows, f)
				}
			}
			return true
		})
	}

	p.mu.Lock()
	synced := p.synced
	p.synced = nil
	if err != nil {
		p.retryAt = now.Add(restoreRetry)
		failed := p.failed
		p.failed = true
		p.mu.Unlock()
		log := p.log.Warn
		if failed {
			log = p.log.Debug
		}
		log("keepalives not restored: the location store cannot be read; trying again", "retry", restoreRetry.String(), "error", err)
		return now.Add(restoreRetry)
	}
	p.restored = true
	n := 0
	for i, f := range flows {
		if synced[f.AOR] || p.flows[f.key()] != nil {
			continue
		}
		spread := time.Duration(float64(f.Interval) * float64(i) / float64(len(flows)))
		p.watch(f, now, now.Add(spread))
		n++
	}
	p.mu.Unlock()
	if n > 0 {
		p.log.Info("keepalives restored from the location store", "bindings", n)
	}
	return time.Time{}
}
