// Package minijson writes and reads JSON without reflection, for the per-container monitor:
// the one process that stays alive for every container links no encoding/json, whose
// reflection, code and per-type caches of struct fields cost each monitor memory for its whole
// life (see bench/monitor.sh). Callers write and read their types field by field; the output
// is what encoding/json would write for the same struct tags, so either side of a file or a
// pipe may use encoding/json.
//
// It is not a general JSON library: numbers are integers only, and object keys match exactly
// (encoding/json also matches them case-insensitively).
package minijson

import (
	"errors"
	"strconv"
	"time"
	"unicode/utf8"
	"unsafe"
)

// Enc appends one JSON value to B. Keys and array elements get their commas from the state
// kept in Enc; values are written with the methods named after their type.
type Enc struct {
	B     []byte
	comma bool
}

func (e *Enc) sep() {
	if e.comma {
		e.B = append(e.B, ',')
	}
	e.comma = true
}

// Key starts the member k of the object being written; one value method must follow.
func (e *Enc) Key(k string) {
	e.sep()
	e.B = AppendString(e.B, k)
	e.B = append(e.B, ':')
	e.comma = false
}

// Open starts an object (as a value: after Key, as an element, or at the top).
func (e *Enc) Open() {
	e.sep()
	e.B = append(e.B, '{')
	e.comma = false
}

// Close ends the object started by Open.
func (e *Enc) Close() {
	e.B = append(e.B, '}')
	e.comma = true
}

// OpenArray starts an array; CloseArray ends it.
func (e *Enc) OpenArray() {
	e.sep()
	e.B = append(e.B, '[')
	e.comma = false
}

func (e *Enc) CloseArray() {
	e.B = append(e.B, ']')
	e.comma = true
}

func (e *Enc) String(s string) {
	e.sep()
	e.B = AppendString(e.B, s)
}

// Bytes writes s as a JSON string, as String(string(s)) would without the copy.
func (e *Enc) Bytes(s []byte) {
	e.sep()
	e.B = appendString(e.B, s)
}

func (e *Enc) Int(v int64) {
	e.sep()
	e.B = strconv.AppendInt(e.B, v, 10)
}

func (e *Enc) Uint(v uint64) {
	e.sep()
	e.B = strconv.AppendUint(e.B, v, 10)
}

func (e *Enc) Bool(v bool) {
	e.sep()
	e.B = strconv.AppendBool(e.B, v)
}

// Time writes t as time.Time's MarshalJSON does (RFC 3339 with nanoseconds).
func (e *Enc) Time(t time.Time) {
	e.sep()
	e.B = append(e.B, '"')
	e.B = t.AppendFormat(e.B, time.RFC3339Nano)
	e.B = append(e.B, '"')
}

// Null writes null.
func (e *Enc) Null() {
	e.sep()
	e.B = append(e.B, "null"...)
}

// Strings writes an array of strings.
func (e *Enc) Strings(v []string) {
	e.OpenArray()
	for _, s := range v {
		e.String(s)
	}
	e.CloseArray()
}

// Omitting members as the tags omitempty and omitzero do.

func (e *Enc) StringOmit(k, v string) {
	if v != "" {
		e.Key(k)
		e.String(v)
	}
}

func (e *Enc) IntOmit(k string, v int64) {
	if v != 0 {
		e.Key(k)
		e.Int(v)
	}
}

func (e *Enc) UintOmit(k string, v uint64) {
	if v != 0 {
		e.Key(k)
		e.Uint(v)
	}
}

func (e *Enc) BoolOmit(k string, v bool) {
	if v {
		e.Key(k)
		e.Bool(v)
	}
}

func (e *Enc) TimeOmit(k string, v time.Time) {
	if !v.IsZero() {
		e.Key(k)
		e.Time(v)
	}
}

func (e *Enc) StringsOmit(k string, v []string) {
	if len(v) > 0 {
		e.Key(k)
		e.Strings(v)
	}
}

const hex = "0123456789abcdef"

// AppendString appends s as a JSON string, escaped as encoding/json escapes it: quotes,
// backslashes and control characters, the HTML characters <, > and &, U+2028 and U+2029;
// invalid UTF-8 becomes U+FFFD.
func AppendString(b []byte, s string) []byte {
	// appendString only reads s: viewing the string's bytes in place copies nothing.
	return appendString(b, unsafe.Slice(unsafe.StringData(s), len(s)))
}

// appendString is AppendString for a byte slice (it never writes to s).
func appendString(b, s []byte) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			b = appendEscape(b, c)
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if (r == utf8.RuneError && size == 1) || r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			switch r {
			case utf8.RuneError:
				b = append(b, `\ufffd`...)
			default:
				b = append(b, `\u202`...)
				b = append(b, hex[r&0xf])
			}
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

func appendEscape(b []byte, c byte) []byte {
	switch c {
	case '"', '\\':
		return append(b, '\\', c)
	case '\b':
		return append(b, '\\', 'b')
	case '\f':
		return append(b, '\\', 'f')
	case '\n':
		return append(b, '\\', 'n')
	case '\r':
		return append(b, '\\', 'r')
	case '\t':
		return append(b, '\\', 't')
	}
	return append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
}

// Dec reads one JSON value from a byte slice. The first error stops it: every later read
// returns a zero value, and Err reports that error.
type Dec struct {
	b   []byte
	i   int
	err error
}

// NewDec returns a Dec reading b.
func NewDec(b []byte) *Dec { return &Dec{b: b} }

// Err is the first error met, including anything but white space after the value once End
// was called.
func (d *Dec) Err() error { return d.err }

// End checks that nothing but white space follows the value, and returns Err.
func (d *Dec) End() error {
	d.ws()
	if d.err == nil && d.i < len(d.b) {
		d.fail("data after the value")
	}
	return d.err
}

func (d *Dec) fail(msg string) {
	if d.err == nil {
		d.err = errors.New("json: " + msg + " at offset " + strconv.Itoa(d.i))
	}
}

func (d *Dec) ws() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// peek returns the next byte after white space, 0 at the end or after an error.
func (d *Dec) peek() byte {
	if d.err != nil {
		return 0
	}
	d.ws()
	if d.i >= len(d.b) {
		d.fail("unexpected end")
		return 0
	}
	return d.b[d.i]
}

// literal consumes word (null, true, false) if it comes next.
func (d *Dec) literal(word string) bool {
	if d.peek() != word[0] {
		return false
	}
	if len(d.b)-d.i < len(word) || string(d.b[d.i:d.i+len(word)]) != word {
		d.fail("bad literal")
		return false
	}
	d.i += len(word)
	return true
}

// Null consumes a null if it comes next and reports whether it did.
func (d *Dec) Null() bool { return d.literal("null") }

// Object reads an object (or null), calling member for each key; member must read the value,
// with Skip for a member it does not know.
func (d *Dec) Object(member func(key string)) {
	if d.Null() || d.err != nil {
		return
	}
	if d.peek() != '{' {
		d.fail("want an object")
		return
	}
	d.i++
	if d.peek() == '}' {
		d.i++
		return
	}
	for d.err == nil {
		k := d.String()
		if d.peek() != ':' {
			d.fail("want ':'")
			return
		}
		d.i++
		member(k)
		switch d.peek() {
		case ',':
			d.i++
		case '}':
			d.i++
			return
		default:
			d.fail("want ',' or '}'")
		}
	}
}

// Array reads an array (or null), calling elem for each element, which it must read.
func (d *Dec) Array(elem func()) {
	if d.Null() || d.err != nil {
		return
	}
	if d.peek() != '[' {
		d.fail("want an array")
		return
	}
	d.i++
	if d.peek() == ']' {
		d.i++
		return
	}
	for d.err == nil {
		elem()
		switch d.peek() {
		case ',':
			d.i++
		case ']':
			d.i++
			return
		default:
			d.fail("want ',' or ']'")
		}
	}
}

// Strings reads an array of strings.
func (d *Dec) Strings() []string {
	var out []string
	d.Array(func() { out = append(out, d.String()) })
	return out
}

// String reads a string; null reads as "".
func (d *Dec) String() string {
	if d.Null() || d.err != nil {
		return ""
	}
	if d.peek() != '"' {
		d.fail("want a string")
		return ""
	}
	d.i++
	start := d.i
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch {
		case c == '"':
			s := d.b[start:d.i]
			d.i++
			if utf8.Valid(s) {
				return string(s)
			}
			return d.unquote(start)
		case c == '\\':
			return d.unquote(start)
		case c < 0x20:
			d.fail("control character in string")
			return ""
		}
		d.i++
	}
	d.fail("unterminated string")
	return ""
}

// unquote decodes the string that starts at start (after its quote), with escapes and
// invalid UTF-8 (as U+FFFD).
func (d *Dec) unquote(start int) string {
	var out []byte
	i := start
	for i < len(d.b) {
		c := d.b[i]
		switch {
		case c == '"':
			d.i = i + 1
			return string(out)
		case c < 0x20:
			d.i = i
			d.fail("control character in string")
			return ""
		case c == '\\':
			if i+1 >= len(d.b) {
				d.i = i
				d.fail("unterminated string")
				return ""
			}
			i++
			switch e := d.b[i]; e {
			case '"', '\\', '/':
				out = append(out, e)
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'u':
				r, ok := hex4(d.b[i+1:])
				if !ok {
					d.i = i
					d.fail("bad \\u escape")
					return ""
				}
				i += 4
				if r >= 0xd800 && r < 0xdc00 {
					// A surrogate pair, when the low half follows; a lone half is U+FFFD.
					if len(d.b) > i+2 && d.b[i+1] == '\\' && d.b[i+2] == 'u' {
						if lo, ok := hex4(d.b[i+3:]); ok && lo >= 0xdc00 && lo < 0xe000 {
							r = 0x10000 + (r-0xd800)<<10 + (lo - 0xdc00)
							i += 6
						}
					}
				}
				if r >= 0xd800 && r < 0xe000 {
					r = utf8.RuneError
				}
				out = utf8.AppendRune(out, r)
			default:
				d.i = i
				d.fail("bad escape")
				return ""
			}
			i++
		case c < utf8.RuneSelf:
			out = append(out, c)
			i++
		default:
			r, size := utf8.DecodeRune(d.b[i:])
			out = utf8.AppendRune(out, r)
			i += size
		}
	}
	d.i = i
	d.fail("unterminated string")
	return ""
}

func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// number returns the text of the integer that comes next.
func (d *Dec) number() string {
	if d.peek() == 0 {
		return ""
	}
	start := d.i
	if d.b[d.i] == '-' {
		d.i++
	}
	for d.i < len(d.b) && d.b[d.i] >= '0' && d.b[d.i] <= '9' {
		d.i++
	}
	if d.i < len(d.b) {
		switch d.b[d.i] {
		case '.', 'e', 'E':
			d.fail("want an integer")
			return ""
		}
	}
	return string(d.b[start:d.i])
}

// Int reads an integer; null reads as 0.
func (d *Dec) Int() int64 {
	if d.Null() {
		return 0
	}
	s := d.number()
	if d.err != nil {
		return 0
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		d.fail("bad integer " + strconv.Quote(s))
	}
	return v
}

// Uint reads a non-negative integer; null reads as 0.
func (d *Dec) Uint() uint64 {
	if d.Null() {
		return 0
	}
	s := d.number()
	if d.err != nil {
		return 0
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		d.fail("bad unsigned integer " + strconv.Quote(s))
	}
	return v
}

// Bool reads true or false; null reads as false.
func (d *Dec) Bool() bool {
	switch {
	case d.Null():
		return false
	case d.literal("true"):
		return true
	case d.literal("false"):
		return false
	}
	d.fail("want true or false")
	return false
}

// Time reads a time as time.Time's UnmarshalJSON does (RFC 3339); null reads as zero.
func (d *Dec) Time() time.Time {
	if d.Null() {
		return time.Time{}
	}
	s := d.String()
	if d.err != nil {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		d.fail("bad time " + strconv.Quote(s))
	}
	return t
}

// Skip reads and drops one value of any kind.
func (d *Dec) Skip() {
	switch c := d.peek(); {
	case c == '{':
		d.Object(func(string) { d.Skip() })
	case c == '[':
		d.Array(d.Skip)
	case c == '"':
		_ = d.String()
	case c == 'n':
		d.literal("null")
	case c == 't':
		d.literal("true")
	case c == 'f':
		d.literal("false")
	case c == '-' || (c >= '0' && c <= '9'):
		// Any number, fractions and exponents included.
		d.i++
		for d.i < len(d.b) && (d.b[d.i] >= '0' && d.b[d.i] <= '9' || d.b[d.i] == '.' || d.b[d.i] == 'e' || d.b[d.i] == 'E' || d.b[d.i] == '+' || d.b[d.i] == '-') {
			d.i++
		}
	case c != 0:
		d.fail("unexpected " + strconv.QuoteRune(rune(c)))
	}
}
