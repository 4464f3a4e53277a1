package destinations

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/switchboard-sip/switchboard/pipeline"
	"github.com/switchboard-sip/switchboard/pipeline/resolve"
)

// Start begins the health checks: every Interval, the destination's name
// is resolved again and each of its addresses gets an OPTIONS; without
// checks, the name is resolved every Resolve. It returns at once; Close
// stops them.
func (d *Destination) Start() {
	if d.out == nil {
		close(d.done)
		return
	}
	go d.run()
}

func (d *Destination) run() {
	defer close(d.done)
	var resolved time.Time // when the name was last resolved without checks
	for {
		d.mu.Lock()
		c := d.check
		named := !d.isAddress()
		d.mu.Unlock()
		interval := c.Interval
		switch {
		case interval > 0:
			d.checkOnce()
		case c.Resolve > 0 && named && time.Since(resolved) >= c.Resolve:
			d.refresh(0)
			resolved = time.Now()
			fallthrough
		default:
			interval = time.Second // checks may be turned on by a reload
		}
		select {
		case <-d.stop:
			return
		case <-time.After(interval):
		}
	}
}

// checkOnce resolves the destination (a name) and checks each address.
func (d *Destination) checkOnce() {
	d.mu.Lock()
	c := d.check
	named := !d.isAddress()
	d.mu.Unlock()
	if named {
		d.refresh(c.Timeout)
	}
	d.mu.Lock()
	hops := append([]*hop(nil), d.hops...)
	d.mu.Unlock()
	var wg sync.WaitGroup
	for _, h := range hops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.probe(h, c)
		}()
	}
	wg.Wait()
}

// refresh resolves the destination's name again; addresses it still has
// keep their state, new ones start up.
func (d *Destination) refresh(timeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), max(timeout, 5*time.Second))
	defer cancel()
	uri := d.URI
	targets, err := d.out.Resolve(ctx, &uri)
	d.mu.Lock()
	defer d.mu.Unlock()
	if err != nil {
		d.resolveErr = err.Error()
		d.log.Warn("destination not resolved", "set", d.Set, "uri", d.URI.String(), "error", err)
		return // keep the addresses known, if any
	}
	d.resolveErr = ""
	old := map[resolve.Target]*hop{}
	for _, h := range d.hops {
		old[h.target] = h
	}
	hops := make([]*hop, 0, len(targets))
	for _, t := range targets {
		if h, ok := old[t]; ok {
			hops = append(hops, h)
		} else {
			hops = append(hops, &hop{target: t, up: true})
		}
	}
	d.hops = hops
	d.resolved = true
}

// probe sends one OPTIONS to h and counts the result.
func (d *Destination) probe(h *hop, c Check) {
	ctx, cancel := context.WithTimeout(context.Background(), c.Timeout)
	defer cancel()
	res, err := d.out.Options(ctx, d.URI, c.From, h.target)
	if errors.Is(err, pipeline.ErrNotRunning) {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	h.checked = d.now()
	h.lastCode, h.lastErr = 0, ""
	if res != nil {
		h.lastCode = res.StatusCode
	}
	if err != nil {
		h.lastErr = err.Error()
	}
	if c.alive(res) {
		h.fails = 0
		h.oks++
		if !h.up && h.oks >= c.UpAfter {
			h.up = true
			d.log.Info("destination address up", "set", d.Set, "uri", d.URI.String(), "address", h.target.Addr.String())
		}
		return
	}
	h.oks = 0
	h.fails++
	if h.up && h.fails >= c.DownAfter {
		d.markDown(h, "health checks failed", h.checked)
	}
}
