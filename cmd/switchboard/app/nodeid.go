package app

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/switchboard-sip/switchboard/config"
)

// nodeIDFile keeps this node's ID in the state folder: the node writes it
// into the UDP bindings from behind NAT that it holds, and after a restart
// pings those alone (Redis holds every node's). It is kept in the state
// folder, not derived from the config, since nodes may share a config file,
// and their advertised addresses may be one name in front of them all.
const nodeIDFile = "switchboard.node"

// nodeID reads this node's ID from the state folder dir, making a new
// random one the first time. The file also names the host it was made on:
// a state folder copied to another host (to share switchboard.key, say)
// gets a new ID there, since two nodes with one ID would each ping, and
// remove, the bindings of the other. replaced reports the host whose ID
// was replaced, if any.
func nodeID(dir string) (id, replaced string, err error) {
	host, _ := os.Hostname()
	path := filepath.Join(dir, nodeIDFile)
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		id, made, _ := strings.Cut(strings.TrimSpace(string(data)), "\n")
		if made = strings.TrimSpace(made); made == host && len(id) == 32 {
			return id, "", nil
		}
		replaced = made
	case !errors.Is(err, fs.ErrNotExist):
		return "", "", err
	}
	var r [16]byte
	if _, err := rand.Read(r[:]); err != nil {
		return "", "", err
	}
	id = hex.EncodeToString(r[:])
	if err := os.WriteFile(path, []byte(id+"\n"+host+"\n"), 0o644); err != nil {
		return "", "", fmt.Errorf("%s: %w", path, err)
	}
	return id, replaced, nil
}

// startNode returns this node's ID (nodeID), saying what a missing or
// replaced one means.
func startNode(cfg *config.File, log *slog.Logger) string {
	id, replaced, err := nodeID(cfg.StateDir())
	switch {
	case err != nil:
		log.Warn("no lasting node ID: with a shared (Redis) store, phones behind NAT are pinged after a restart only once they register again", "error", err)
	case replaced != "":
		log.Warn("the node ID in the state folder was made on another host: this host gets its own", "file", nodeIDFile, "host", replaced)
	}
	return id
}
