package campaign

import "errors"

// Errors. Each is wrapped with the details; test with errors.Is.
var (
	// ErrBadName: the campaign name cannot be used.
	ErrBadName = errors.New("bad campaign name")
	// ErrNotFound: no campaign has that name.
	ErrNotFound = errors.New("no such campaign")
	// ErrBadInput: the input cannot be read as a campaign file at all (a
	// header without the three columns, an unknown format). Single bad
	// rows are rejects, not errors.
	ErrBadInput = errors.New("bad campaign input")
	// ErrInputChanged: a re-run of an interrupted import was given input
	// that differs from the first run's where the first run had got to.
	ErrInputChanged = errors.New("the input differs from the one the campaign was started with")
	// ErrState: the campaign's state does not allow the operation (resume
	// a cancelled campaign, import into a cancelled one, ...).
	ErrState = errors.New("campaign state does not allow this")
	// ErrOtherApp: the campaign belongs to another SDKAppID.
	ErrOtherApp = errors.New("campaign belongs to another app")
	// ErrConcurrentImport: another import of the same campaign moved the
	// checkpoint.
	ErrConcurrentImport = errors.New("another import of this campaign is running")
	// ErrBusy: a pause, cancel or feeder batch held the campaign's lock too long.
	ErrBusy = errors.New("campaign is busy")
)
