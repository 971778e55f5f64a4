// Command gen-openapi writes the fake GitHub's OpenAPI description: GitHub's
// REST description reduced to the operations githubtest keeps (those it
// serves and those githubtest.Operations adds for their schemas), the
// components they reach, and the method and path of every other operation.
//
//	go generate ./internal/githubtest           # fetches the pinned npm package
//	go run ./internal/githubtest/internal/gen-openapi -in api.github.com.json -out internal/githubtest/testdata/api.github.com.json
//
// Without -in it runs `npm pack` for the pinned package in a temporary
// directory and checks the tarball's sha1; either way it checks the
// description's sha256, so the output always comes from the same input.
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/railyard/railyard/internal/githubtest"
)

// The pinned source; testdata/README.md beside the output names the same.
const (
	npmPackage  = "@octokit/openapi@23.0.2"
	tarballSHA1 = "743435033357133786d56271b48a67991a614b0a"
	member      = "package/generated/api.github.com.json"
	fileSHA256  = "829b4bebb19a53133289f7b0bc819f4f1118115821db2ca9f25e9ee995a7da2a"
)

func main() {
	in := flag.String("in", "", "GitHub's full description ("+strings.TrimPrefix(member, "package/")+" of "+npmPackage+"); default: fetch the package with npm")
	out := flag.String("out", "testdata/api.github.com.json", "where to write the reduced description")
	flag.Parse()
	if err := run(*in, *out); err != nil {
		fmt.Fprintln(os.Stderr, "gen-openapi:", err)
		os.Exit(1)
	}
}

func run(in, out string) error {
	var full []byte
	var err error
	if in != "" {
		full, err = os.ReadFile(in)
	} else {
		full, err = fetch()
	}
	if err != nil {
		return err
	}
	if sum := sha256.Sum256(full); hex.EncodeToString(sum[:]) != fileSHA256 {
		return fmt.Errorf("description's sha256 is %x, want %s (the file of %s); to move to another version, change the pins here and in testdata/README.md", sum, fileSHA256, npmPackage)
	}
	reduced, err := reduce(full, githubtest.Operations())
	if err != nil {
		return err
	}
	if err := os.WriteFile(out, reduced, 0o644); err != nil {
		return fmt.Errorf("write reduced description: %w", err)
	}
	fmt.Printf("gen-openapi: wrote %s (%d bytes, %d operations kept)\n", out, len(reduced), len(githubtest.Operations()))
	return nil
}

// fetch packs the pinned package with npm into a temporary directory, checks
// the tarball and returns the description inside it.
func fetch() ([]byte, error) {
	dir, err := os.MkdirTemp("", "gen-openapi-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	cmd := exec.Command("npm", "pack", "--silent", npmPackage)
	cmd.Dir = dir
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("npm pack %s: %w", npmPackage, err)
	}
	tarballs, err := filepath.Glob(filepath.Join(dir, "*.tgz"))
	if err != nil || len(tarballs) != 1 {
		return nil, fmt.Errorf("npm pack %s: want one tarball in %s, found %d", npmPackage, dir, len(tarballs))
	}
	tgz, err := os.ReadFile(tarballs[0])
	if err != nil {
		return nil, err
	}
	if sum := sha1.Sum(tgz); hex.EncodeToString(sum[:]) != tarballSHA1 {
		return nil, fmt.Errorf("%s: tarball sha1 is %x, want %s", npmPackage, sum, tarballSHA1)
	}
	return extract(tgz, member)
}

// extract returns the bytes of one file of a gzipped tarball.
func extract(tgz []byte, name string) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(tgz))
	if err != nil {
		return nil, fmt.Errorf("read tarball: %w", err)
	}
	tr := tar.NewReader(zr)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("tarball has no %s", name)
		}
		if err != nil {
			return nil, fmt.Errorf("read tarball: %w", err)
		}
		if hdr.Name == name && hdr.Typeflag == tar.TypeReg {
			return io.ReadAll(tr)
		}
	}
}
