package minijson

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

var strs = []string{
	"", "plain", `quote " and \ backslash`, "<tag> & amp", "tab\tnew\nline\rcr\bbs\fff",
	"\x00\x01\x1f\x7f", "héllo wörld ✓ 😀", "bad \xff utf8 \xc3", "line\u2028sep\u2029", "/slash/",
}

// TestAppendStringLikeEncodingJSON: strings are written byte for byte as encoding/json writes
// them, so files written by either look the same.
func TestAppendStringLikeEncodingJSON(t *testing.T) {
	for _, s := range strs {
		want, _ := json.Marshal(s)
		if got := AppendString(nil, s); string(got) != string(want) {
			t.Errorf("AppendString(%q) = %s, want %s", s, got, want)
		}
		var e Enc
		e.Bytes([]byte(s))
		if string(e.B) != string(want) {
			t.Errorf("Bytes(%q) = %s, want %s", s, e.B, want)
		}
	}
}

// TestStringRoundTrip: what encoding/json writes reads back as encoding/json reads it,
// escapes (\u, surrogate pairs, lone surrogates) included.
func TestStringRoundTrip(t *testing.T) {
	in := append([]string{}, strs...)
	raw := []string{`"\u00e9\ud83d\ude00"`, `"\ud800 lone"`, `"\/ \" \\ \b\f\n\r\t"`, `"\u0041BC"`, "\"raw \xff byte\""}
	for _, s := range in {
		b, _ := json.Marshal(s)
		raw = append(raw, string(b))
	}
	for _, r := range raw {
		var want string
		if err := json.Unmarshal([]byte(r), &want); err != nil {
			t.Fatalf("%s: %v", r, err)
		}
		d := NewDec([]byte(r))
		got := d.String()
		if err := d.End(); err != nil || got != want {
			t.Errorf("String(%s) = %q, %v; want %q", r, got, err, want)
		}
	}
}

type rec struct {
	Name  string    `json:"name"`
	N     int64     `json:"n"`
	U     uint64    `json:"u,omitempty"`
	OK    bool      `json:"ok,omitempty"`
	At    time.Time `json:"at"`
	Tags  []string  `json:"tags,omitempty"`
	Inner *rec      `json:"inner,omitempty"`
}

func (r *rec) encode(e *Enc) {
	e.Open()
	e.Key("name")
	e.String(r.Name)
	e.Key("n")
	e.Int(r.N)
	e.UintOmit("u", r.U)
	e.BoolOmit("ok", r.OK)
	e.Key("at")
	e.Time(r.At)
	e.StringsOmit("tags", r.Tags)
	if r.Inner != nil {
		e.Key("inner")
		r.Inner.encode(e)
	}
	e.Close()
}

func (r *rec) decode(d *Dec) {
	d.Object(func(k string) {
		switch k {
		case "name":
			r.Name = d.String()
		case "n":
			r.N = d.Int()
		case "u":
			r.U = d.Uint()
		case "ok":
			r.OK = d.Bool()
		case "at":
			r.At = d.Time()
		case "tags":
			r.Tags = d.Strings()
		case "inner":
			if !d.Null() {
				r.Inner = new(rec)
				r.Inner.decode(d)
			}
		default:
			d.Skip()
		}
	})
}

func TestObjectsLikeEncodingJSON(t *testing.T) {
	at := time.Date(2026, 11, 23, 18, 0, 0, 123456789, time.UTC)
	for _, r := range []rec{
		{},
		{Name: "a<b>", N: -42, U: 1 << 63, OK: true, At: at, Tags: []string{"x", ""}, Inner: &rec{Name: "in", At: at.Add(time.Hour)}},
		{N: 9223372036854775807, At: at.In(time.FixedZone("", 3600))},
	} {
		want, _ := json.Marshal(r)
		var e Enc
		r.encode(&e)
		if string(e.B) != string(want) {
			t.Errorf("encode:\n got %s\nwant %s", e.B, want)
		}
		var got rec
		d := NewDec(want)
		got.decode(d)
		if err := d.End(); err != nil {
			t.Fatalf("decode %s: %v", want, err)
		}
		again, _ := json.Marshal(got)
		if string(again) != string(want) {
			t.Errorf("decode:\n got %s\nwant %s", again, want)
		}
	}
}

func TestDecodeSkipsAndNulls(t *testing.T) {
	in := ` { "extra": {"a": [1, 2.5e3, -0.1, "s", true, false, null, {}], "b": []},
	  "name": null, "n": 7, "tags": null, "inner": null, "more": "x" } `
	var r rec
	d := NewDec([]byte(in))
	r.decode(d)
	if err := d.End(); err != nil {
		t.Fatal(err)
	}
	if r.N != 7 || r.Name != "" || r.Tags != nil || r.Inner != nil {
		t.Errorf("got %+v", r)
	}
}

func TestDecodeErrors(t *testing.T) {
	for _, in := range []string{
		``, `{`, `{"n": 1.5}`, `{"n": "1"}`, `{"name": 1}`, `{"n" 1}`, `{"n": 1,}`, `{"n": 1} x`,
		`{"name": "a` + "\n" + `"}`, `{"name": "\q"}`, `{"name": "\u12"}`, `{"at": "yesterday"}`,
		`{"n": 99999999999999999999}`, `{"ok": tru}`, `[1]`, `{"extra": [1 2]}`,
	} {
		var r rec
		d := NewDec([]byte(in))
		r.decode(d)
		if err := d.End(); err == nil {
			t.Errorf("%q: no error, got %+v", in, r)
		} else if !strings.HasPrefix(err.Error(), "json: ") {
			t.Errorf("%q: error %q", in, err)
		}
	}
}
