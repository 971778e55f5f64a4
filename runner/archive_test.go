package runner_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"testing"
)

// top is the folder GitHub wraps a tarball's files in.
const top = "octo-app-1a2b3c4/"

// entry is one archive entry; name is the full name in the archive.
type entry struct {
	name string
	typ  byte
	body string
	mode int64
	link string
}

func dir(name string) entry { return entry{name: name, typ: tar.TypeDir, mode: 0o775} }
func file(name, body string) entry {
	return entry{name: name, typ: tar.TypeReg, body: body, mode: 0o664}
}
func script(name, body string) entry {
	return entry{name: name, typ: tar.TypeReg, body: body, mode: 0o775}
}
func symlink(name, to string) entry {
	return entry{name: name, typ: tar.TypeSymlink, link: to, mode: 0o777}
}
func hardlink(name, to string) entry {
	return entry{name: name, typ: tar.TypeLink, link: to, mode: 0o664}
}
func special(name string, t byte) entry { return entry{name: name, typ: t, mode: 0o600} }

// tarball builds a gzip tarball shaped like GitHub's: a pax global header
// holding the commit, then the entries.
func tarball(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(tw.WriteHeader(&tar.Header{
		Typeflag:   tar.TypeXGlobalHeader,
		Name:       "pax_global_header",
		PAXRecords: map[string]string{"comment": "1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b"},
	}))
	for _, e := range entries {
		hdr := &tar.Header{Typeflag: e.typ, Name: e.name, Mode: e.mode, Size: int64(len(e.body)), Linkname: e.link}
		if e.typ == tar.TypeChar || e.typ == tar.TypeBlock {
			hdr.Devmajor, hdr.Devminor = 1, 3 // /dev/null
		}
		must(tw.WriteHeader(hdr))
		_, err := tw.Write([]byte(e.body))
		must(err)
	}
	must(tw.Close())
	must(zw.Close())
	return buf.Bytes()
}

// repoTarball is a small valid revision whose README says readme.
func repoTarball(t testing.TB, readme string) []byte {
	return tarball(t, dir(top), file(top+"README.md", readme), script(top+"deploy.sh", "#!/bin/sh\necho deployed\n"))
}
