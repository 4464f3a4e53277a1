// Package locationtest damages bolt files for tests, as a disk, a full
// file system or a wrong command would.
package locationtest

import (
	"errors"
	"math/rand/v2"
	"os"
)

// Overwrite writes random bytes (seeded by seed) over the pages ids of the
// file at path.
func Overwrite(path string, seed uint64, ids ...int) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	r := rand.New(rand.NewPCG(seed, 1))
	page := make([]byte, os.Getpagesize())
	for _, id := range ids {
		for i := range page {
			page[i] = byte(r.Uint32())
		}
		if _, err := f.WriteAt(page, int64(id)*int64(len(page))); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}

// Garbage writes n pages of random bytes over n pages of the file at
// path, chosen at random (seeded by seed) among all but the two meta
// pages.
func Garbage(path string, seed uint64, n int) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	pages := int(fi.Size() / int64(os.Getpagesize()))
	if pages < 3 {
		return errors.New("the file has no page past its meta pages")
	}
	r := rand.New(rand.NewPCG(seed, seed))
	ids := make([]int, n)
	for i := range ids {
		ids[i] = 2 + r.IntN(pages-2)
	}
	return Overwrite(path, seed, ids...)
}

// CutHalf cuts the file at path to half its length.
func CutHalf(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	return os.Truncate(path, fi.Size()/2)
}
