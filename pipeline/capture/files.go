package capture

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// The pcap files kept open: at most maxOpen, each closed once no message
// was written to it for idleClose (a call's messages come in bursts; a
// file is opened again, and appended to, when more come).
const (
	maxOpen   = 64
	idleClose = 30 * time.Second
)

// files writes the pcap file of each call, named after its Call-ID, in a
// folder. It is used by one goroutine.
type files struct {
	open map[string]*openFile
}

type openFile struct {
	f    *os.File
	used time.Time
}

// write appends p to the pcap file of callID in dir, creating the folder
// and the file (with the pcap header) as needed.
func (fs *files) write(dir, callID string, p *Packet) error {
	rec, err := AppendPcap(nil, p)
	if err != nil {
		return err
	}
	path := filepath.Join(dir, PcapName(callID))
	of := fs.open[path]
	if of == nil {
		if of, err = fs.create(dir, path); err != nil {
			return err
		}
	}
	of.used = p.Time
	_, err = of.f.Write(rec)
	return err
}

func (fs *files) create(dir, path string) (*openFile, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o640)
	if err != nil {
		return nil, err
	}
	if st, err := f.Stat(); err == nil && st.Size() == 0 {
		if _, err := f.Write(PcapHeader()); err != nil {
			_ = f.Close()
			return nil, err
		}
	}
	if fs.open == nil {
		fs.open = map[string]*openFile{}
	}
	if len(fs.open) >= maxOpen {
		fs.closeAll() // the calls still talking open theirs again
	}
	of := &openFile{f: f}
	fs.open[path] = of
	return of, nil
}

// closeAll closes every file.
func (fs *files) closeAll() {
	for path, of := range fs.open {
		_ = of.f.Close()
		delete(fs.open, path)
	}
}

// closeIdle closes the files unused since before now less idleClose.
func (fs *files) closeIdle(now time.Time) {
	for path, of := range fs.open {
		if now.Sub(of.used) >= idleClose {
			_ = of.f.Close()
			delete(fs.open, path)
		}
	}
}

// PcapName is the file name of a call's pcap: the Call-ID where it is
// made of letters, digits and ".-_@", else those kept and the rest
// replaced by "_", with a hash of the Call-ID so that two calls never
// share a file.
func PcapName(callID string) string {
	clean := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_', r == '@':
			return r
		}
		return '_'
	}, callID)
	if clean == callID && len(clean) <= 100 && clean != "" && clean[0] != '.' {
		return clean + ".pcap"
	}
	h := sha256.Sum256([]byte(callID))
	if len(clean) > 64 {
		clean = clean[:64]
	}
	return clean + "-" + hex.EncodeToString(h[:6]) + ".pcap"
}
