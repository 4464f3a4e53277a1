package engine

import "github.com/emiago/sipgo/sip"

// maxArrivals bounds the responses a branch keeps in arrival order; past
// it (a flood of provisionals) they are handled as sipgo passes them up.
const maxArrivals = 32

// arrival is a response of a branch as it reached the proxy.
type arrival struct {
	res  *sip.Response
	turn *turn
	// early is set when run handled the response before sipgo passed it
	// up (it arrived before one that was passed up first): its own pass-up
	// is then skipped.
	early bool
}

// branchKey is what finds the branch a response answers: the branch
// parameter of the top Via, which the proxy made unique (arrivedResponse
// also compares the CSeq's method: a CANCEL's responses carry the same
// branch). It allocates nothing, on the socket's reader.
func branchKey(m sip.Message) string {
	if via := m.Via(); via != nil {
		id, _ := via.Params.Get("branch")
		return id
	}
	return ""
}

// arrivedResponse is onMessage's part for a response: while the branch it
// answers is open, it is kept in arrival order, with a turn in its call.
func (e *Engine) arrivedResponse(res *sip.Response) {
	key := branchKey(res)
	cseq := res.CSeq()
	if key == "" || cseq == nil {
		return
	}
	if v, ok := e.branches.Load(key); ok {
		if b := v.(*branch); b.req.Method == cseq.MethodName {
			b.arrived(res)
		}
	}
}

func (b *branch) arrived(res *sip.Response) {
	b.arrivalsMu.Lock()
	defer b.arrivalsMu.Unlock()
	if !b.open || len(b.arrivals) >= maxArrivals {
		return
	}
	b.arrivals = append(b.arrivals, arrival{res: res, turn: b.t.e.calls.arrivedResponse(res)})
}

// hasArrivals reports whether a response reached the proxy that run has
// not handled yet. A response read over a connection is kept here before
// the connection's reader reads on, and sees it close.
func (b *branch) hasArrivals() bool {
	b.arrivalsMu.Lock()
	defer b.arrivalsMu.Unlock()
	return len(b.arrivals) > 0
}

// take returns what run handles now that sipgo passed res up: the
// responses that arrived before res and are not handled yet, then res,
// in arrival order. It returns none for a response already handled
// early, and res alone for one that was not kept.
func (b *branch) take(res *sip.Response) []arrival {
	b.arrivalsMu.Lock()
	defer b.arrivalsMu.Unlock()
	for i, a := range b.arrivals {
		if a.res != res {
			continue
		}
		var out []arrival
		for j := range b.arrivals[:i] {
			if early := &b.arrivals[j]; !early.early {
				// sipgo has yet to read it: run works on a copy.
				out = append(out, arrival{res: copyResponse(early.res), turn: early.turn})
				early.early = true
			}
		}
		b.arrivals = append(b.arrivals[:i:i], b.arrivals[i+1:]...)
		if a.early {
			return out
		}
		return append(out, a)
	}
	return []arrival{{res: res}}
}

// close stops keeping the branch's responses: its final one was handled,
// or it ended. The turns of those not handled end.
func (b *branch) close() {
	b.arrivalsMu.Lock()
	b.open = false
	left := b.arrivals
	b.arrivals = nil
	b.arrivalsMu.Unlock()
	b.t.e.branches.CompareAndDelete(b.key, b)
	b.unwatchFlow()
	for _, a := range left {
		if !a.early {
			b.t.e.calls.end(a.turn)
		}
	}
}

// copyResponse returns a copy of a response the proxy received, to be
// relayed: sipgo's Clone fixes the destination to the top Via's, which is
// the proxy's own until it is removed.
func copyResponse(res *sip.Response) *sip.Response {
	c := res.Clone()
	c.SetDestination("")
	return c
}
