package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// httpMethods are the keys of an OpenAPI path item that name operations.
var httpMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

var componentRef = regexp.MustCompile(`"\$ref":\s*"#/components/([^/"]+)/([^/"]+)"`)

// reduce keeps, of the description full, the operations in ops ("GET /path"),
// their path-level parameters and every component they reach through $ref.
// Under "x-all-operations" it lists the methods of every path, so that the
// fake can tell a real but unserved endpoint from one GitHub does not have.
func reduce(full []byte, ops []string) ([]byte, error) {
	var doc struct {
		OpenAPI    string                                `json:"openapi"`
		Info       json.RawMessage                       `json:"info"`
		Servers    json.RawMessage                       `json:"servers"`
		Paths      map[string]map[string]json.RawMessage `json:"paths"`
		Components map[string]map[string]json.RawMessage `json:"components"`
	}
	if err := json.Unmarshal(full, &doc); err != nil {
		return nil, fmt.Errorf("decode OpenAPI description: %w", err)
	}

	paths := map[string]map[string]json.RawMessage{}
	var todo []json.RawMessage
	for _, op := range ops {
		method, path, ok := strings.Cut(op, " ")
		method = strings.ToLower(method)
		if !ok || !slices.Contains(httpMethods, method) {
			return nil, fmt.Errorf("operation %q is not METHOD /path", op)
		}
		body, ok := doc.Paths[path][method]
		if !ok {
			return nil, fmt.Errorf("OpenAPI description has no %s", op)
		}
		if paths[path] == nil {
			paths[path] = map[string]json.RawMessage{}
			if params, ok := doc.Paths[path]["parameters"]; ok {
				paths[path]["parameters"] = params
				todo = append(todo, params)
			}
		}
		paths[path][method] = body
		todo = append(todo, body)
	}

	components := map[string]map[string]json.RawMessage{}
	for len(todo) > 0 {
		next := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		for _, m := range componentRef.FindAllSubmatch(next, -1) {
			kind, name := string(m[1]), string(m[2])
			if _, seen := components[kind][name]; seen {
				continue
			}
			body, ok := doc.Components[kind][name]
			if !ok {
				return nil, fmt.Errorf("OpenAPI description has no component %s/%s", kind, name)
			}
			if components[kind] == nil {
				components[kind] = map[string]json.RawMessage{}
			}
			components[kind][name] = body
			todo = append(todo, body)
		}
	}

	all := map[string][]string{}
	for path, item := range doc.Paths {
		for _, method := range httpMethods {
			if _, ok := item[method]; ok {
				all[path] = append(all[path], method)
			}
		}
	}

	// encoding/json sorts map keys and compacts raw messages: the output is
	// the same for the same input, and indent-free.
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	err := enc.Encode(map[string]any{
		"openapi":          doc.OpenAPI,
		"info":             doc.Info,
		"servers":          doc.Servers,
		"paths":            paths,
		"components":       components,
		"x-all-operations": all,
	})
	if err != nil {
		return nil, fmt.Errorf("encode reduced OpenAPI description: %w", err)
	}
	return out.Bytes(), nil
}
