//go:build !linux

package bench

import "errors"

const simNice = 0

// favour is not implemented outside Linux.
func favour(int) error { return errors.New("not on Linux") }
