package flags

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// WatchDelay is how long Watch waits after the last change in the flag
// file's directory before reloading, so a burst of writes loads once.
const WatchDelay = 200 * time.Millisecond

// Reloaded is told the outcome of each reload Watch attempts: err is nil
// when the file was loaded, and changed says whether that changed the
// flags (Info has the new version and warnings); otherwise err says why
// the file was rejected and the running flags kept. An unchanged file is
// reported too, so a file put back as it was after a rejected edit clears
// the failure. A rejected file is not reported again until its content
// changes: Watch reloads on any event in the directory, and a broken file
// beside busy ones would otherwise be reported on each.
type Reloaded func(changed bool, err error)

// Watch reloads path whenever it may have changed, until ctx is done. It
// watches the file's directory, so editors and tools that replace the
// file by renaming a new one over it (and Kubernetes ConfigMap symlink
// swaps) are seen. It returns once the watch is set up; the file itself
// is not loaded first (call LoadFile for that).
func (e *Evaluator) Watch(ctx context.Context, path string, report Reloaded) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("flags: watch %s: %w", path, err)
	}
	if err := w.Add(filepath.Dir(path)); err != nil {
		w.Close()
		return fmt.Errorf("flags: watch %s: %w", path, err)
	}
	go func() {
		defer w.Close()
		var timer *time.Timer
		var fire <-chan time.Time
		rejected := "" // what the last rejected attempt read, see attempt
		for {
			select {
			case <-ctx.Done():
				if timer != nil {
					timer.Stop()
				}
				return
			case _, ok := <-w.Events:
				if !ok {
					return
				}
				// Any event in the directory may concern the file (a
				// symlink swap renames another name); an unchanged
				// file loads as a no-op.
				if timer == nil {
					timer = time.NewTimer(WatchDelay)
				} else {
					timer.Reset(WatchDelay)
				}
				fire = timer.C
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				if report != nil {
					report(false, fmt.Errorf("flags: watch %s: %w", path, err))
				}
			case <-fire:
				fire = nil
				changed, seen, err := e.attempt(path)
				switch {
				case err == nil:
					rejected = ""
				case seen == rejected:
					continue // reported already
				default:
					rejected = seen
				}
				if report != nil {
					report(changed, err)
				}
			}
		}
	}()
	return nil
}

// Reload loads path again; see LoadFile. It reports whether the flags
// changed. The gateway's own config watcher may call it instead of Watch.
func (e *Evaluator) Reload(path string) (changed bool, err error) { return e.reload(path) }

func (e *Evaluator) reload(path string) (bool, error) {
	changed, _, err := e.attempt(path)
	return changed, err
}

// attempt loads path again. seen identifies what it read, so a watcher
// can tell one rejected content (or read error) from the next: the
// file's hash, or the read error.
func (e *Evaluator) attempt(path string) (changed bool, seen string, err error) {
	data, err := readFile(path)
	if err != nil {
		return false, err.Error(), err
	}
	changed, err = e.load(data, path)
	return changed, hashOf(data), err
}
