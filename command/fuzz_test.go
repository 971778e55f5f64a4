package command

import (
	"strings"
	"testing"
)

func FuzzParse(f *testing.F) {
	for _, tc := range parseCases {
		f.Add(tc.body)
	}
	f.Fuzz(func(t *testing.T, body string) {
		items := Parse(body)
		if len(items) > MaxCommands+1 {
			t.Fatalf("%d items", len(items))
		}
		lines := 0
		for range strings.Lines(body) {
			lines++
		}
		for i, it := range items {
			var line int
			switch {
			case it.Command != nil && it.Err == nil:
				line = it.Command.Line
				checkCommand(t, *it.Command)
			case it.Command == nil && it.Err != nil:
				se, ok := it.Err.(*SyntaxError)
				if !ok {
					t.Fatalf("item %d: error %T, want *SyntaxError", i, it.Err)
				}
				line = se.Line
			default:
				t.Fatalf("item %d: %+v, want exactly one of Command and Err", i, it)
			}
			if line < 1 || line > lines {
				t.Fatalf("item %d at line %d of %d", i, line, lines)
			}
		}
	})
}
