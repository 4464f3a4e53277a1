package config

import "path/filepath"

// StateDir returns the folder the proxy writes its own files to: the
// Record-Route signing key, the bolt store, the control socket, and the
// files of stages given by a relative path. It is server.state_dir when
// set, else the config file's folder, as before the key existed.
func (f *File) StateDir() string {
	if f.Server.StateDir != "" {
		return f.Server.StateDir
	}
	return filepath.Dir(f.Path)
}

// StatePath resolves the name of a file the proxy writes: an absolute path
// stays as it is, a relative one is taken from StateDir. An empty name
// stays empty.
func (f *File) StatePath(name string) string {
	if name == "" || filepath.IsAbs(name) {
		return name
	}
	return filepath.Join(f.StateDir(), name)
}

// resolveStateDir makes a relative server.state_dir absolute, taken from
// the config file's folder like every other path the config names.
func (s *Server) resolveStateDir(configDir string) {
	if s.StateDir == "" || filepath.IsAbs(s.StateDir) {
		return
	}
	abs, err := filepath.Abs(filepath.Join(configDir, s.StateDir))
	if err != nil {
		abs = filepath.Join(configDir, s.StateDir)
	}
	s.StateDir = abs
}
