package prefix

import (
	"path/filepath"

	"github.com/switchboard-sip/switchboard/pipeline"
)

// Share returns a stage's table file, name relative to the config's
// folder, loaded and checked with check. The file and its watcher are
// shared between pipelines, so that a reload of the config neither loses
// nor doubles the watcher; each build loads the file again, and a file
// that does not load fails the build. While a config is only checked
// (`switchboard validate`), nothing is watched.
func Share(b *pipeline.BuildContext, stage, name string, check func(*Table) error) (*File, error) {
	path := b.Path(name)
	key, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	f, err := pipeline.Share(b, stage+":"+key, func() (*File, error) {
		f := NewFile(path, b.Services.Log.With("stage", stage))
		if !b.Services.Checking {
			if err := f.Watch(); err != nil {
				return nil, err
			}
		}
		return f, nil
	})
	if err != nil {
		return nil, err
	}
	return f, f.Load(check)
}
