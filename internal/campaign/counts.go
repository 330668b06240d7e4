package campaign

import "github.com/recallq/recallq/worker"

// The fields of a campaign's counts hash (keys.counts). Code names them
// only through these constants; the Lua scripts get them from store.go's
// luaNames.
const (
	fieldRecalled        = "recalled"
	fieldAlreadyRecalled = "already_recalled"
	fieldDeadLettered    = "dead_lettered"
	fieldDuplicates      = "duplicates"
	fieldCancelled       = "cancelled"
	fieldUnaccounted     = "unaccounted"
	fieldDeleted         = "deleted"
	// fieldDeadPrefix starts the dead letters' count by code: "dead:20022".
	fieldDeadPrefix = "dead:"
)

// recordRetrying is what recordScript is told for a task that will run
// again: it moves the task to the retrying set and counts nothing.
const recordRetrying = "retrying"

// fateRecords is the one table from a worker.Fate to what recordScript
// records: the counts field a final fate increments, or recordRetrying. A
// fate not here (called again at once) changes nothing.
var fateRecords = map[worker.Fate]string{
	worker.FateRecalled:        fieldRecalled,
	worker.FateAlreadyRecalled: fieldAlreadyRecalled,
	worker.FateDeadLettered:    fieldDeadLettered,
	worker.FateRetrying:        recordRetrying,
	worker.FateKept:            recordRetrying,
}
