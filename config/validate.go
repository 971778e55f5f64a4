package config

import (
	"fmt"
	"io"
	"os"
)

// PipelinePath is where a repository keeps its pipeline file.
const PipelinePath = ".github/railyard.yml"

// ValidateFile checks the pipeline file at path and writes every problem as
// "PATH:LINE: message" to w. It returns the number of problems; a read error
// is an error.
func ValidateFile(path string, w io.Writer) (problems int, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("validate: %w", err)
	}
	defer f.Close()
	// One byte past the limit is enough for Parse to refuse the file.
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return 0, fmt.Errorf("validate: %w", err)
	}
	_, list := Parse(data)
	for _, p := range list {
		if _, err := fmt.Fprintf(w, "%s:%d: %s\n", path, p.Line, p.Message); err != nil {
			return len(list), fmt.Errorf("validate: write: %w", err)
		}
	}
	return len(list), nil
}
