package campaign

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
)

// Format is the layout of a campaign file.
type Format string

// Formats.
const (
	// FormatAuto picks CSV or JSON Lines from the file's extension, or
	// from its first byte when the extension says nothing (stdin).
	FormatAuto Format = "auto"
	// FormatCSV: a header line naming From_Account, To_Account and MsgKey
	// (any order; other columns are ignored), then one message per record.
	FormatCSV Format = "csv"
	// FormatJSONL: one JSON object per line with the keys From_Account,
	// To_Account and MsgKey (string values); blank lines are skipped.
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

// Column names, as Tencent spells the fields.
const (
	colFrom   = "From_Account"
	colTo     = "To_Account"
	colMsgKey = "MsgKey"
)

// maxLine bounds one JSON line; a longer line is rejected, not buffered.
const maxLine = 64 << 10

// record is one input record: a row, or the reason it cannot be one.
type record struct {
	line   int    // the input line the record starts on (1-based)
	row    row    // the fields as read
	reject string // why the record could not be read; "" when it was
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
		return &jsonlReader{br: br}, nil
	}
	return nil, fmt.Errorf("%w: format %q", ErrBadInput, f)
}

// csvReader reads CSV with a header.
type csvReader struct {
	r           *csv.Reader
	from, to, k int // column indexes
	need        int // fields a record must have
}

func newCSVReader(br *bufio.Reader) (*csvReader, error) {
	r := csv.NewReader(br)
	r.FieldsPerRecord = -1 // checked per record, so a short row is a reject, not an error
	r.ReuseRecord = true
	header, err := r.Read()
	if errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: the input is empty: the first line must be the header %s,%s,%s", ErrBadInput, colFrom, colTo, colMsgKey)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrBadInput, err)
	}
	cols := map[string]int{}
	for i, h := range header {
		h = strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))
		if _, dup := cols[h]; dup && h != "" {
			return nil, fmt.Errorf("%w: header names column %q twice", ErrBadInput, h)
		}
		cols[h] = i
	}
	c := &csvReader{r: r}
	for _, want := range []struct {
		name string
		idx  *int
	}{{colFrom, &c.from}, {colTo, &c.to}, {colMsgKey, &c.k}} {
		i, ok := cols[want.name]
		if !ok {
			return nil, fmt.Errorf("%w: header %q has no column %s: the first line must name the columns %s,%s,%s (exact spelling, any order)",
				ErrBadInput, strings.Join(header, ","), want.name, colFrom, colTo, colMsgKey)
		}
		*want.idx = i
		c.need = max(c.need, i+1)
	}
	return c, nil
}

func (c *csvReader) next() (record, error) {
	fields, err := c.r.Read()
	var pe *csv.ParseError
	switch {
	case errors.Is(err, io.EOF):
		return record{}, io.EOF
	case errors.As(err, &pe):
		return record{line: pe.StartLine, reject: "not valid CSV: " + pe.Err.Error()}, nil
	case err != nil:
		return record{}, err
	}
	line, _ := c.r.FieldPos(0)
	if len(fields) < c.need {
		return record{line: line, reject: fmt.Sprintf("has %d fields; the header names %d", len(fields), c.need),
			row: row{from: field(fields, c.from), to: field(fields, c.to), msgKey: field(fields, c.k)}}, nil
	}
	// Copies: the reader reuses its buffers.
	return record{line: line, row: row{
		from:   strings.Clone(fields[c.from]),
		to:     strings.Clone(fields[c.to]),
		msgKey: strings.Clone(fields[c.k]),
	}}, nil
}

func field(fields []string, i int) string {
	if i < len(fields) {
		return strings.Clone(fields[i])
	}
	return ""
}

// jsonlReader reads one JSON object per line.
type jsonlReader struct {
	br   *bufio.Reader
	line int
	buf  []byte
}

type jsonRow struct {
	From   string `json:"From_Account"`
	To     string `json:"To_Account"`
	MsgKey string `json:"MsgKey"`
}

func (j *jsonlReader) next() (record, error) {
	for {
		b, tooLong, err := j.readLine()
		if err != nil {
			return record{}, err
		}
		j.line++
		if tooLong {
			return record{line: j.line, reject: fmt.Sprintf("line is longer than %d bytes", maxLine)}, nil
		}
		if j.line == 1 {
			b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
		}
		b = bytes.TrimSpace(b)
		if len(b) == 0 {
			continue
		}
		var v jsonRow
		if err := json.Unmarshal(b, &v); err != nil {
			return record{line: j.line, reject: jsonReason(err)}, nil
		}
		return record{line: j.line, row: row{from: v.From, to: v.To, msgKey: v.MsgKey}}, nil
	}
}

// readLine returns the next line without its newline; io.EOF after the last.
func (j *jsonlReader) readLine() (line []byte, tooLong bool, err error) {
	j.buf = j.buf[:0]
	for {
		b, err := j.br.ReadSlice('\n')
		if len(j.buf)+len(b) > maxLine+1 {
			tooLong = true
		} else if !tooLong {
			j.buf = append(j.buf, b...)
		}
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			if len(j.buf) == 0 && !tooLong {
				return nil, false, io.EOF
			}
			return j.buf, tooLong, nil
		case err != nil:
			return nil, false, err
		}
		return bytes.TrimSuffix(j.buf, []byte("\n")), tooLong, nil
	}
}

func jsonReason(err error) string {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te) && te.Field != "":
		return fmt.Sprintf("%s: want a string, got a JSON %s", te.Field, te.Value)
	case errors.As(err, &te):
		return fmt.Sprintf("not a JSON object but a JSON %s", te.Value)
	case errors.As(err, &se):
		return "not valid JSON: " + se.Error()
	}
	return "not valid JSON: " + err.Error()
}
