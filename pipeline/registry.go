package pipeline

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"
)

// StageInfo describes a stage type to the registry.
type StageInfo struct {
	// Name is the stage type, as written in `use = "..."`.
	Name string
	// Description is one line for `switchboard stages`.
	Description string
	// New returns a new, unconfigured stage. It must have no side effects.
	New func() Stage
}

var (
	registryMu sync.RWMutex
	registry   = map[string]StageInfo{}
)

// Register adds a stage type. Stages call it from init(); a duplicate or
// empty name is a programming error and panics.
func Register(info StageInfo) {
	if info.Name == "" || info.New == nil {
		panic("pipeline: Register needs a name and a constructor")
	}
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, dup := registry[info.Name]; dup {
		panic(fmt.Sprintf("pipeline: stage %q registered twice", info.Name))
	}
	registry[info.Name] = info
}

// Lookup returns the registered stage type with the given name.
func Lookup(name string) (StageInfo, bool) {
	registryMu.RLock()
	defer registryMu.RUnlock()
	info, ok := registry[name]
	return info, ok
}

// Stages returns every registered stage type, sorted by name.
func Stages() []StageInfo {
	registryMu.RLock()
	defer registryMu.RUnlock()
	out := make([]StageInfo, 0, len(registry))
	for _, info := range registry {
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// StageKeys returns the config keys a stage type takes, from the `toml`
// tags of its fields.
func StageKeys(info StageInfo) []string {
	t := reflect.TypeOf(info.New())
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		return nil
	}
	var keys []string
	for i := 0; i < t.NumField(); i++ {
		tag := strings.Split(t.Field(i).Tag.Get("toml"), ",")[0]
		if tag != "" && tag != "-" {
			keys = append(keys, tag)
		}
	}
	return keys
}
