package secrets

import (
	"cmp"
	"encoding/base64"
	"net/url"
	"slices"
)

// minFragment is the shortest piece of a base64 stream redacted on its own:
// shorter ones would hide ordinary text.
const minFragment = 6

// Forms lists what to redact for the given secret values: each value as
// written, base64-encoded (standard and URL alphabets, with and without
// padding), URL-encoded (query and path escaping), and the parts of a
// base64 stream that hold the value wherever it starts (so `echo "$S" |
// base64` and a value inside a larger encoded blob are hidden too).
// Longest first, without repeats or empty strings.
func Forms(values ...string) []string {
	var out []string
	for _, v := range values {
		if v == "" {
			continue
		}
		out = append(out, v, url.QueryEscape(v), url.PathEscape(v))
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
			raw := enc.WithPadding(base64.NoPadding)
			out = append(out, enc.EncodeToString([]byte(v)), raw.EncodeToString([]byte(v)))
			for shift := range 3 {
				if f := fragment(raw, v, shift); len(f) >= minFragment {
					out = append(out, f)
				}
			}
		}
	}
	slices.SortFunc(out, func(a, b string) int { return cmp.Or(cmp.Compare(len(b), len(a)), cmp.Compare(a, b)) })
	return slices.Compact(out)
}

// fragment is the part of the base64 encoding of v, preceded in its stream
// by shift bytes (mod 3), that depends on v alone: base64 turns every 3
// bytes into 4 characters, so the characters that also hold bits of the
// bytes before or after v differ from stream to stream.
func fragment(enc *base64.Encoding, v string, shift int) string {
	s := enc.EncodeToString(append(make([]byte, shift), v...))
	bits := 8 * (shift + len(v))
	start := (8*shift + 5) / 6 // the first character with no bit of the prefix
	end := bits / 6            // past the last character with no bit of what follows
	if start >= end {
		return ""
	}
	return s[start:end]
}
