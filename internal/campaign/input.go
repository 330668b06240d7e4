package campaign

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/recallq/recallq/internal/strictjson"
)

// Format is the layout of a campaign file.
type Format string

// Formats.
const (
	// FormatAuto picks CSV or JSON Lines from the file's extension, or
	// from its first byte when the extension says nothing (stdin).
	FormatAuto Format = "auto"
	// FormatCSV: a header line naming From_Account, To_Account and MsgKey
	// for one-to-one messages, or GroupId and MsgSeq (TopicId optional) for
	// group messages (any order; other columns are ignored), then one
	// message per record. A header naming both sets (as an export or a
	// rejects file does) takes each record as the kind whose columns it
	// fills (see rowFrom).
	FormatCSV Format = "csv"
	// FormatJSONL: one JSON object per line with the keys From_Account,
	// To_Account and MsgKey (string values), or GroupId, MsgSeq (a number,
	// or a string of digits) and TopicId (optional); blank lines are
	// skipped. Each line's kind is the keys it gives (see rowFrom).
	FormatJSONL Format = "jsonl"
)

// ParseFormat parses a --format value.
func ParseFormat(s string) (Format, error) {
	switch f := Format(strings.ToLower(s)); f {
	case "", FormatAuto:
		return FormatAuto, nil
	case FormatCSV, FormatJSONL:
		return f, nil
	case "ndjson", "json":
		return FormatJSONL, nil
	}
	return "", fmt.Errorf("%w: format %q: use auto, csv or jsonl", ErrBadInput, s)
}

// Bounds on a record, the same for CSV and JSON Lines: a longer line or
// record is rejected, not buffered, so memory stays flat whatever the input.
const (
	// maxLine bounds one line, and one record however many lines it spans.
	maxLine = 64 << 10
	// maxRecordLines bounds the lines one CSV record may span: a quoted
	// field may hold line breaks (a note column), but a quote left open
	// must not swallow the rows after it.
	maxRecordLines = 100
	// maxEcho bounds each field a reject echoes (on the terminal and in the
	// rejects file): a field longer than any valid one is cut.
	maxEcho = 512
)

// record is one input record: a row, or the reason it cannot be one, or
// a blank line. Records cover the input's lines one after another, each
// line exactly once: that is how an import accounts for every line.
type record struct {
	line   int    // the input line the record starts on (1-based)
	last   int    // the input line it ends on
	row    row    // the fields as read
	reject string // why the record could not be read; "" when it was
	blank  bool   // a blank line: neither row nor reject
}

// recordReader yields records until io.EOF.
type recordReader interface {
	next() (record, error)
}

// detectFormat decides the format: the flag if given, else the file's
// extension, else the first non-blank byte ('{' means JSON Lines). how
// says which rule decided, for the user.
func detectFormat(br *bufio.Reader, source string, f Format) (Format, string, error) {
	if f != FormatAuto && f != "" {
		return f, "as asked", nil
	}
	switch ext := strings.ToLower(filepath.Ext(source)); ext {
	case ".csv":
		return FormatCSV, "by its extension " + ext, nil
	case ".jsonl", ".ndjson", ".json":
		return FormatJSONL, "by its extension " + ext, nil
	}
	for n := 1; ; n++ {
		b, err := br.Peek(n)
		if len(b) < n {
			if err == nil || errors.Is(err, io.EOF) || errors.Is(err, bufio.ErrBufferFull) {
				return FormatCSV, "by its content (empty)", nil
			}
			return "", "", err
		}
		c := b[n-1]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			continue
		case n <= 3 && bytes.HasPrefix([]byte("\xef\xbb\xbf"), b): // UTF-8 BOM
			continue
		case c == '{':
			return FormatJSONL, "by its content (a line starting with '{')", nil
		}
		return FormatCSV, "by its content", nil
	}
}

func newRecordReader(br *bufio.Reader, f Format) (recordReader, error) {
	switch f {
	case FormatCSV:
		return newCSVReader(br)
	case FormatJSONL:
		return &jsonlReader{lines: &lineReader{br: br}}, nil
	}
	return nil, fmt.Errorf("%w: format %q", ErrBadInput, f)
}

// lineReader reads the input a line at a time, numbering the lines. A line
// longer than maxLine is reported as too long and skipped to its end, never
// held whole. Lines given back with unread are read again first.
type lineReader struct {
	br      *bufio.Reader
	n       int    // lines read from br so far
	buf     []byte // the last line read from br; reused
	pending []line // lines given back, to read again
}

// line is one input line, without its newline (and a CR before it).
type line struct {
	no      int
	text    []byte // valid until the next read, unless the line was given back
	tooLong bool
}

// next returns the next line; io.EOF after the last. Another error is the
// input's, wrapped with the line it stopped in.
func (l *lineReader) next() (line, error) {
	if len(l.pending) > 0 {
		ln := l.pending[0]
		l.pending = l.pending[1:]
		return ln, nil
	}
	l.buf = l.buf[:0]
	tooLong := false
	for {
		b, err := l.br.ReadSlice('\n')
		if len(l.buf)+len(b) > maxLine+2 { // +2: the CR and newline
			tooLong = true
		} else if !tooLong {
			l.buf = append(l.buf, b...)
		}
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			if len(l.buf) == 0 && !tooLong {
				return line{}, io.EOF
			}
		case err != nil:
			return line{}, fmt.Errorf("line %d: %w", l.n+1, err)
		}
		l.n++
		text := bytes.TrimSuffix(bytes.TrimSuffix(l.buf, []byte("\n")), []byte("\r"))
		if l.n == 1 {
			text = bytes.TrimPrefix(text, []byte("\xef\xbb\xbf")) // a UTF-8 BOM
		}
		if tooLong || len(text) > maxLine {
			return line{no: l.n, tooLong: true}, nil
		}
		return line{no: l.n, text: text}, nil
	}
}

// unread gives lines back, to be read again before any other.
func (l *lineReader) unread(lines []line) {
	l.pending = append(slices.Clone(lines), l.pending...)
}

// csvReader reads CSV with a header: RFC 4180, as encoding/csv reads it
// (a field may be quoted, "" is a quote within one, a quoted field may hold
// commas and line breaks; no bare quote in an unquoted field).
//
// It replaces encoding/csv, which cannot be bounded: a quote left open makes
// it read on to the end of the input looking for the closing one, so one bad
// row swallowed every row after it and the import still said it was
// complete. This reader takes a line at a time and bounds a record by
// maxRecordLines lines and maxLine bytes. A quoted From_Account, To_Account
// or MsgKey must close on its line (none holds a line break); a record that
// is not valid CSV is rejected on its first line and reading starts again at
// the next line, so the lines it had read are read again as records of
// their own.
type csvReader struct {
	lines      *lineReader
	cols       [len(inputCols)]int // each of inputCols' index in a record, -1 when the header lacks it
	c2c, group bool                // the header names every column a row of the kind needs
	need       int                 // fields a record must have
	header     record

	fields []string // reused between records
	ends   []int    // each field's end in buf
	buf    []byte   // the record's field bytes, unquoted
}

func newCSVReader(br *bufio.Reader) (*csvReader, error) {
	c := &csvReader{lines: &lineReader{br: br}}
	var header []string
	for {
		rec, fields, err := c.read()
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: the input is empty: the first line must be the header %s,%s,%s (or %s,%s for group messages)",
				ErrBadInput, colFrom, colTo, colMsgKey, colGroupID, colMsgSeq)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: header: %w", ErrBadInput, err)
		}
		if rec.reject != "" {
			return nil, fmt.Errorf("%w: header (line %d): %s", ErrBadInput, rec.line, rec.reject)
		}
		if !rec.blank {
			c.header, header = rec, slices.Clone(fields)
			break
		}
	}
	cols := map[string]int{}
	for i, h := range header {
		h = strings.TrimSpace(h)
		if _, dup := cols[h]; dup && h != "" {
			return nil, fmt.Errorf("%w: header names column %q twice", ErrBadInput, h)
		}
		cols[h] = i
	}
	missing := func(names ...string) string {
		for _, name := range names {
			if _, ok := cols[name]; !ok {
				return name
			}
		}
		return ""
	}
	hasAny := func(names ...string) bool {
		return slices.ContainsFunc(names, func(n string) bool { _, ok := cols[n]; return ok })
	}
	noC2C, noGroup := missing(colFrom, colTo, colMsgKey), missing(colGroupID, colMsgSeq)
	c.c2c, c.group = noC2C == "", noGroup == ""
	for n, name := range inputCols {
		// The columns of a kind the header does not name whole are others.
		i, ok := cols[name]
		if !ok || (n < groupCols && !c.c2c) || (n >= groupCols && !c.group) {
			i = -1
		}
		c.cols[n] = i
		c.need = max(c.need, i+1)
	}
	switch {
	case c.c2c || c.group:
		return c, nil
	case hasAny(colGroupID, colTopicID, colMsgSeq) && !hasAny(colFrom, colTo, colMsgKey):
		// No one-to-one column, some group one: a file of group messages.
		return nil, fmt.Errorf("%w: header %q has no column %s: a file of group messages names the columns %s,%s (and %s for a topic's messages; exact spelling, any order)",
			ErrBadInput, strings.Join(header, ","), noGroup, colGroupID, colMsgSeq, colTopicID)
	}
	return nil, fmt.Errorf("%w: header %q has no column %s: the first line must name the columns %s,%s,%s (exact spelling, any order), or %s,%s for group messages",
		ErrBadInput, strings.Join(header, ","), noC2C, colFrom, colTo, colMsgKey, colGroupID, colMsgSeq)
}

func (c *csvReader) next() (record, error) {
	rec, fields, err := c.read()
	if err != nil || rec.blank {
		return rec, err
	}
	if rec.reject != "" {
		return rec, nil
	}
	var vals [len(inputCols)]string
	for i, col := range c.cols {
		vals[i] = unneutralise(field(fields, col))
	}
	rec.row, rec.reject = rowFrom(vals, c.c2c, c.group)
	if len(fields) < c.need {
		rec.reject = fmt.Sprintf("has %d fields; the header names %d", len(fields), c.need)
	}
	return rec, nil
}

// read reads one record: its fields (valid until the next read), or why it
// is not valid CSV, or a blank line.
func (c *csvReader) read() (record, []string, error) {
	first, err := c.lines.next()
	if err != nil {
		return record{}, nil, err
	}
	rec := record{line: first.no, last: first.no}
	switch {
	case first.tooLong:
		rec.reject = fmt.Sprintf("line is longer than %d bytes", maxLine)
		return rec, nil, nil
	case len(first.text) == 0:
		rec.blank = true
		return rec, nil, nil
	}
	var more []line // lines after the first, kept to read again if the record is bad
	reason := c.parse(first, &more)
	if reason != "" {
		c.lines.unread(more)
		rec.reject = "not valid CSV: " + reason
		return rec, nil, nil
	}
	if len(more) > 0 {
		rec.last = more[len(more)-1].no
	}
	// One string for the whole record, sliced per field, as encoding/csv does.
	all := string(c.buf)
	c.fields = c.fields[:0]
	start := 0
	for _, end := range c.ends {
		c.fields = append(c.fields, all[start:end])
		start = end
	}
	return rec, c.fields, nil
}

// parse reads the fields of the record that starts with first into c.buf,
// each field's end in c.ends, reading more lines into more while a quoted
// field goes on. It returns why the record is not valid CSV, or "".
func (c *csvReader) parse(first line, more *[]line) string {
	c.buf, c.ends = c.buf[:0], c.ends[:0]
	s := first.text
	size := len(s)
	i := 0
	for {
		col := len(c.ends)
		// At the start of a field.
		if i >= len(s) || s[i] != '"' {
			j := bytes.IndexByte(s[i:], ',')
			if j < 0 {
				j = len(s) - i
			}
			f := s[i : i+j]
			if bytes.IndexByte(f, '"') >= 0 {
				return `bare " in a field that is not quoted: quote the whole field and double the quote (""), or remove it`
			}
			c.buf = append(c.buf, f...)
			c.endField()
			i += j
			if i == len(s) {
				return ""
			}
			i++ // the comma
			continue
		}
		// A quoted field.
		opened := first.no
		if len(*more) > 0 {
			opened = (*more)[len(*more)-1].no
		}
		i++
		for {
			j := bytes.IndexByte(s[i:], '"')
			if j < 0 {
				// The line ends inside the quotes.
				c.buf = append(c.buf, s[i:]...)
				if name := c.column(col); name != "" {
					return fmt.Sprintf("a quoted %s opened on line %d is not closed on its line: close the quote (a %s is one line)", name, opened, name)
				}
				if len(*more)+1 >= maxRecordLines {
					return fmt.Sprintf("a quote opened on line %d is not closed within %d lines: close the quote", opened, maxRecordLines)
				}
				next, err := c.lines.next()
				switch {
				case errors.Is(err, io.EOF):
					return fmt.Sprintf("a quote opened on line %d is never closed: close the quote", opened)
				case err != nil:
					return fmt.Sprintf("a quote opened on line %d is not closed before the input failed: %v", opened, err)
				}
				next.text = bytes.Clone(next.text)
				*more = append(*more, next)
				if next.tooLong || size+len(next.text) > maxLine {
					return fmt.Sprintf("a quote opened on line %d is not closed within %d bytes: close the quote", opened, maxLine)
				}
				size += len(next.text)
				c.buf = append(c.buf, '\n')
				s, i = next.text, 0
				continue
			}
			c.buf = append(c.buf, s[i:i+j]...)
			i += j + 1
			if i < len(s) && s[i] == '"' { // "" is a quote
				c.buf = append(c.buf, '"')
				i++
				continue
			}
			break
		}
		c.endField()
		switch {
		case i == len(s):
			return ""
		case s[i] == ',':
			i++
		default:
			return `a quoted field's closing " is followed by more text: double a quote within a quoted field ("")`
		}
	}
}

// endField ends the field being read at the end of c.buf.
func (c *csvReader) endField() { c.ends = append(c.ends, len(c.buf)) }

// column names the column i if it is one of inputCols, else "".
func (c *csvReader) column(i int) string {
	for n, col := range c.cols {
		if col == i {
			return inputCols[n]
		}
	}
	return ""
}

// field is fields[i], or "" when the record has no such field.
func field(fields []string, i int) string {
	if i < 0 || i >= len(fields) {
		return ""
	}
	return fields[i]
}

// inputCols are the columns (CSV) or keys (JSON Lines) a row is read
// from: a one-to-one message's, then a group message's (c2cCols, groupCols).
var inputCols = [...]string{colFrom, colTo, colMsgKey, colGroupID, colTopicID, colMsgSeq}

// c2cCols and groupCols are the ranges of inputCols of each kind.
const (
	c2cCols   = 0 // From_Account, To_Account, MsgKey
	groupCols = 3 // GroupId, TopicId, MsgSeq
)

// rowFrom makes the row of one record from the values of inputCols (""
// for one the input does not give). c2c and group say whether the input
// names the columns of each kind (a CSV file's header; both for JSON
// Lines). Named alone, a kind is every row's. Named both, a row that fills
// a group column and no one-to-one column is a group message, any other a
// one-to-one message, and one that fills columns of both kinds is
// rejected: reject says why, "" for a row.
func rowFrom(v [len(inputCols)]string, c2c, group bool) (r row, reject string) {
	c := rowOf(kindC2C, v[c2cCols], v[c2cCols+1], v[c2cCols+2])
	g := rowOf(kindGroup, v[groupCols], v[groupCols+1], v[groupCols+2])
	switch {
	case !group:
		return c, ""
	case !c2c:
		return g, ""
	}
	fills := func(vals []string) bool { return slices.ContainsFunc(vals, func(s string) bool { return s != "" }) }
	switch c2cFilled, groupFilled := fills(v[c2cCols:groupCols]), fills(v[groupCols:]); {
	case c2cFilled && groupFilled:
		both := c
		both.groupID, both.topicID, both.msgSeq = g.groupID, g.topicID, g.msgSeq
		return both, fmt.Sprintf("gives both a one-to-one message (%s, %s, %s) and a group message (%s, %s, %s): a row is one message; give one of them, and each on its own row",
			colFrom, colTo, colMsgKey, colGroupID, colTopicID, colMsgSeq)
	case groupFilled:
		return g, ""
	}
	return c, ""
}

// echo cuts s to at most maxEcho bytes, on a character boundary: what a
// reject echoes of a field (any valid field is far shorter).
func echo(s string) string {
	if len(s) <= maxEcho {
		return s
	}
	cut := maxEcho
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

// jsonlReader reads one JSON object per line, with strictjson: a field
// given twice, invalid UTF-8 and a field name in other letter case are
// rejects (as at the intake); other fields are ignored.
type jsonlReader struct {
	lines *lineReader
}

func (j *jsonlReader) next() (record, error) {
	ln, err := j.lines.next()
	if err != nil {
		return record{}, err
	}
	rec := record{line: ln.no, last: ln.no}
	b := bytes.TrimSpace(ln.text)
	switch {
	case ln.tooLong:
		rec.reject = fmt.Sprintf("line is longer than %d bytes", maxLine)
		return rec, nil
	case len(b) == 0:
		rec.blank = true
		return rec, nil
	}
	obj, err := strictjson.Object(b)
	if err != nil {
		rec.reject = jsonReason(err)
		return rec, nil
	}
	for _, k := range slices.Sorted(maps.Keys(obj)) {
		if want := strictjson.Miscased(k, inputCols[:]); want != "" {
			rec.reject = fmt.Sprintf("%s: names are case-sensitive: write %s", echo(k), want)
			return rec, nil
		}
	}
	var vals [len(inputCols)]string
	for i, name := range inputCols {
		raw, ok := obj[name]
		if !ok {
			continue
		}
		if name == colMsgSeq && raw.Kind() == '0' {
			vals[i] = string(raw) // a number: rowFrom's validation says if it is a MsgSeq
			continue
		}
		v, err := strictjson.String(raw)
		if err != nil {
			if name == colMsgSeq {
				err = errors.New("want a number or a string of digits, got " + strings.TrimPrefix(err.Error(), "want a string, got "))
			}
			rec.reject = name + ": " + err.Error()
			return rec, nil
		}
		vals[i] = v
	}
	rec.row, rec.reject = rowFrom(vals, true, true)
	return rec, nil
}

func jsonReason(err error) string {
	switch {
	case errors.Is(err, strictjson.ErrNotObject):
		return "not a JSON object: a row is {\"From_Account\":\"...\",\"To_Account\":\"...\",\"MsgKey\":\"...\"} or {\"GroupId\":\"...\",\"MsgSeq\":123}"
	case errors.Is(err, strictjson.ErrSyntax):
		return "not valid JSON: " + err.Error()
	}
	return err.Error() // names the field: "MsgKey: is given twice: ..."
}
