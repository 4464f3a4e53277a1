package dialog

import (
	"crypto/sha256"
	"encoding/hex"
	"time"

	"github.com/switchboard-sip/switchboard/config"
	"github.com/switchboard-sip/switchboard/pipeline/location"
)

// SnapshotSuffix ends the name of the file, beside the bolt location
// store, that the dialogs are written to between a stop and a start.
const SnapshotSuffix = ".dialogs"

// Open opens the dialog store that goes with the location store cfg names
// (after its defaults): the same Redis, shared by every instance; beside a
// bolt file, a Memory written to <path>.dialogs when it closes, so that a
// graceful restart keeps the dialogs in progress; with the memory backend,
// a Memory that a restart empties, as it empties the registrations.
// signingKey is the key that signs the proxy's Record-Routes: instances
// share the dialogs in a Redis when they share that key.
func Open(cfg config.Store, stateDir string, signingKey []byte, now time.Time) (Store, error) {
	cfg.Defaults()
	switch cfg.Backend {
	case "redis":
		sum := sha256.Sum256(signingKey)
		return NewRedis(cfg.URL, cfg.Prefix, hex.EncodeToString(sum[:6]))
	case "bolt":
		return OpenMemory(location.BoltPath(cfg, stateDir)+SnapshotSuffix, now)
	default:
		return NewMemory(), nil
	}
}
