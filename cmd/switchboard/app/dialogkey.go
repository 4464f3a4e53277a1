package app

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// dialogKeyFile is where the key that signs the proxy's Record-Routes is
// kept, in the state folder (config.File.StateDir): dialogs in progress
// survive a restart only if the key does.
const dialogKeyFile = "switchboard.key"

// dialogKey reads the key from the state folder dir, making a new random one (mode 0600) the
// first time.
func dialogKey(dir string) ([]byte, error) {
	path := filepath.Join(dir, dialogKeyFile)
	key, err := os.ReadFile(path)
	if err == nil {
		if len(key) < 16 {
			return nil, fmt.Errorf("%s: shorter than 16 bytes: remove it and a new key is made", path)
		}
		return key, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	key = make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, key, 0o600); err != nil {
		return nil, err
	}
	return key, nil
}
