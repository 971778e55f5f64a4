package config

import (
	"fmt"

	"go.yaml.in/yaml/v3"
)

// MaxFileSize is the largest pipeline file Railyard reads, 1 MiB: GitHub's
// contents API sends no content past 1 MB either.
const MaxFileSize = 1 << 20

// MaxAliasNodes caps the YAML nodes that aliases (*name) stand for, counted
// as if each alias were written out. A big real pipeline sharing through
// aliases an env block of four variables (9 nodes) across 30 stages of 10
// steps needs 2,700; sharing 30 stages of 5 steps each needs about 1,400.
// A 20 KB file aliasing a step 3,000 times inside a stage aliased 3,000
// times stands for nine million.
const MaxAliasNodes = 5000

// sizeProblem reports a file over MaxFileSize; nil when it is not.
func sizeProblem(data []byte) *Problem {
	if len(data) <= MaxFileSize {
		return nil
	}
	return &Problem{Line: 1, Message: fmt.Sprintf(
		"the file is larger than 1 MiB (%d bytes), the most Railyard reads", MaxFileSize)}
}

// aliasProblem walks the document as if its aliases were written out and
// stops as soon as they stand for more than MaxAliasNodes nodes, so the
// walk costs at most the document's own nodes plus that budget. It reports
// the alias of the document during whose expansion the budget ran out.
func aliasProblem(doc *yaml.Node) *Problem {
	w := aliasWalk{budget: MaxAliasNodes}
	if w.walk(doc, nil) {
		return nil
	}
	return &Problem{Line: max(w.culprit.Line, 1), Message: fmt.Sprintf(
		"YAML aliases expand to more than %d nodes (the limit ran out at *%s); "+
			"Railyard refuses files whose aliases repeat this much: alias less, or write the repeated parts out",
		MaxAliasNodes, w.culprit.Value)}
}

type aliasWalk struct {
	budget  int
	culprit *yaml.Node // the document's alias being expanded when the budget ran out
}

// walk visits n; outer is the document's alias that n was reached through
// (nil for the document's own nodes, which are not counted: the file size
// bounds them). It returns false once the budget is spent.
func (w *aliasWalk) walk(n *yaml.Node, outer *yaml.Node) bool {
	if outer != nil {
		if w.budget--; w.budget < 0 {
			w.culprit = outer
			return false
		}
	}
	if n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			return true
		}
		if outer == nil {
			outer = n
		}
		return w.walk(n.Alias, outer)
	}
	for _, c := range n.Content {
		if !w.walk(c, outer) {
			return false
		}
	}
	return true
}
