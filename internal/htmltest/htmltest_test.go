package htmltest

import (
	"slices"
	"testing"
)

func TestReadsAsAPersonDoes(t *testing.T) {
	doc := Parse(t, `<html><head><style>p { color: red }</style></head><body>
<p class="a">One
   <b>two</b></p>
<script>var hidden = 1</script>
<p>three</p> <a href="/x">x</a></body></html>`)
	var ps []string
	for p := range Elements(doc, "p") {
		ps = append(ps, Text(p))
	}
	if want := []string{"One two", "three"}; !slices.Equal(ps, want) {
		t.Errorf("paragraphs %q, want %q", ps, want)
	}
	for body := range Elements(doc, "body") {
		if got, want := Text(body), "One two three x"; got != want {
			t.Errorf("body text %q, want %q (no script, no style)", got, want)
		}
	}
	for a := range Elements(doc, "a") {
		if Attr(a, "href") != "/x" || Attr(a, "title") != "" {
			t.Errorf("href %q, title %q; want /x and none", Attr(a, "href"), Attr(a, "title"))
		}
	}
}
