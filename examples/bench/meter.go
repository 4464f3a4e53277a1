package main

// Measuring a proxy while a step runs: its CPU time, its peak memory, the
// machine's other load and the UDP datagrams dropped.

import (
	"sync"
	"time"
)

// sampler records the peak of a proxy's memory, sampled every 100 ms.
type sampler struct {
	stop chan struct{}
	done chan struct{}
	mu   sync.Mutex
	max  int64
}

func sampleMemory(p *proxy) *sampler {
	s := &sampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			n := p.memory()
			s.mu.Lock()
			s.max = max(s.max, n)
			s.mu.Unlock()
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

func (s *sampler) peak() int64 {
	close(s.stop)
	<-s.done
	return s.max
}

// meter measures what the proxy and the machine spent during a step.
type meter struct {
	p       *proxy
	cpu0    time.Duration
	busy0   time.Duration
	drops0  int64
	pdrops0 int64
	samples *sampler
}

func startMeter(p *proxy) (*meter, error) {
	m := &meter{p: p, samples: sampleMemory(p)}
	var err error
	if m.cpu0, err = p.cpu(); err != nil {
		m.samples.peak()
		return nil, err
	}
	m.busy0, _, _ = machineCPU()
	m.drops0, _ = udpReceiveDrops()
	m.pdrops0, _ = p.drops()
	return m, nil
}

// finish fills in the proxy's CPU and peak memory (PSS), and the CPU of the
// machine that was neither the proxy's nor sipp's.
func (m *meter) finish(st *step) {
	cpu1, err := m.p.cpu()
	busy1, _, _ := machineCPU()
	if drops1, err := udpReceiveDrops(); err == nil {
		st.UDPDrops = drops1 - m.drops0
	}
	if pdrops1, err := m.p.drops(); err == nil {
		st.ProxyDrops = pdrops1 - m.pdrops0
	}
	st.ProxyPSS = m.samples.peak()
	if err != nil {
		st.Err = err.Error()
		return
	}
	st.ProxyCPU = cpu1 - m.cpu0
	st.OtherCPU = max(0, (busy1-m.busy0)-st.ProxyCPU-st.UACCPU-st.UASCPU)
}
