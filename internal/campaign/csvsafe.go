package campaign

import "strings"

// A spreadsheet reads a CSV cell that starts with = + - @ (or a tab or a
// CR before one of them) as a formula: someone opening a rejects file or an
// export would run whatever an account or MsgKey held. Every CSV recallq
// writes neutralises such a cell the way OWASP describes, with a leading
// single quote, which spreadsheets show as text.
//
// The campaign CSV reader takes that quote off again, so an export or a
// rejects file imports back unchanged. For that to be exact, a value that
// already starts with quotes and then one of those characters gets one
// quote more; a plain number (-1, +3.5) is no formula and is written as is.

// formulaStart holds the characters that start a formula.
const formulaStart = "=+-@\t\r"

// neutralise returns cell safe to open in a spreadsheet.
func neutralise(cell string) string {
	if quotedFormula(cell) || (cell != "" && strings.IndexByte(formulaStart, cell[0]) >= 0 && !isNumber(cell)) {
		return "'" + cell
	}
	return cell
}

// unneutralise undoes neutralise.
func unneutralise(cell string) string {
	if quotedFormula(cell) {
		return cell[1:]
	}
	return cell
}

// quotedFormula reports whether s is one or more quotes and then a formula
// character.
func quotedFormula(s string) bool {
	t := strings.TrimLeft(s, "'")
	return len(t) < len(s) && t != "" && strings.IndexByte(formulaStart, t[0]) >= 0
}

// isNumber reports whether s is a plain decimal number with a sign.
func isNumber(s string) bool {
	digits, dot := 0, false
	for i, c := range s {
		switch {
		case i == 0 && (c == '+' || c == '-'):
		case c >= '0' && c <= '9':
			digits++
		case c == '.' && !dot && digits > 0:
			dot = true
		default:
			return false
		}
	}
	return digits > 0 && s[len(s)-1] != '.'
}

// neutraliseAll neutralises every cell of a record, in place.
func neutraliseAll(rec []string) []string {
	for i, c := range rec {
		rec[i] = neutralise(c)
	}
	return rec
}
