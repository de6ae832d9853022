package token

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// The key file is shared by every instance and read while it is rewritten, so it is only ever
// written whole: to a temporary file beside it, then linked or renamed into place. The lock that
// serialises writers is lockFile, in lock_unix.go and lock_other.go.

// writeTemp writes data to a new 0600 file beside path and returns its name.
func writeTemp(path string, data []byte) (string, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return "", fmt.Errorf("token: write key file: %w", err)
	}
	name := f.Name()
	err = f.Chmod(0o600)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(name)
		return "", fmt.Errorf("token: write key file: %w", err)
	}
	return name, nil
}

// createFileExclusive makes path appear with data, complete, or fails with fs.ErrExist when it is
// already there. A hard link of a finished temporary file does both at once; filesystems without
// hard links fall back to O_EXCL, where a racing reader may briefly see a partial file.
func createFileExclusive(path string, data []byte) error {
	tmp, err := writeTemp(path, data)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	lerr := os.Link(tmp, path)
	if lerr == nil || errors.Is(lerr, fs.ErrExist) {
		if lerr == nil {
			syncDir(path)
		}
		return lerr
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("token: write key file: %w", err)
	}
	syncDir(path)
	return nil
}

// replaceFile swaps in data atomically: readers see the old file or the new one, never a mix.
func replaceFile(path string, data []byte) error {
	tmp, err := writeTemp(path, data)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("token: replace key file: %w", err)
	}
	syncDir(path)
	return nil
}

// syncDir makes a rename or link durable; where directories cannot be synced there is nothing more
// to do, so errors are ignored.
func syncDir(path string) {
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
}
