package handlers

import (
	"cmp"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-github/v62/github"
)

// TestDecodePushReadsRealPayloads checks the one-pass reader against
// go-github's full decode on every push payload GitHub documents.
func TestDecodePushReadsRealPayloads(t *testing.T) {
	files, err := filepath.Glob("../testdata/webhooks/push/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no push payloads: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			payload, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var want github.PushEvent
			if err := json.Unmarshal(payload, &want); err != nil {
				t.Fatal(err)
			}
			got, err := decodePush(payload)
			if err != nil {
				t.Fatalf("decodePush: %v", err)
			}
			owner := want.GetRepo().GetOwner()
			wantEv := pushEvent{
				Ref: want.GetRef(), After: want.GetAfter(),
				Repo: want.GetRepo().GetName(), DefaultBranch: want.GetRepo().GetDefaultBranch(),
				Owner: owner.GetLogin(), OwnerName: owner.GetName(),
				Sender: want.GetSender().GetLogin(), Pusher: want.GetPusher().GetName(),
				Deleted: want.GetDeleted(), InstallationID: want.GetInstallation().GetID(),
			}
			if got != wantEv {
				t.Errorf("decodePush =\n%+v\nwant\n%+v", got, wantEv)
			}
			if cmp.Or(got.Owner, got.OwnerName) == "" || got.After == "" {
				t.Errorf("owner or after empty in %+v", got)
			}
		})
	}
}

func TestDecodePushRefusesMalformedPayloads(t *testing.T) {
	for name, payload := range map[string]string{
		"not JSON":                `ref=refs/heads/main`,
		"truncated":               `{"ref":"refs/heads/main","after":"abc","repository":{"name":"x","default_branch":"main"}`,
		"trailing garbage":        `{"ref":"refs/heads/main","after":"abc","repository":{"name":"x","default_branch":"main"}} {`,
		"empty":                   ``,
		"array":                   `[]`,
		"ref not a string":        `{"ref":1,"after":"abc","repository":{"name":"x","default_branch":"main"}}`,
		"no after":                `{"ref":"refs/heads/main","repository":{"name":"x","default_branch":"main"}}`,
		"no repository":           `{"ref":"refs/heads/main","after":"abc"}`,
		"no default branch":       `{"ref":"refs/heads/main","after":"abc","repository":{"name":"x"}}`,
		"repository not object":   `{"ref":"refs/heads/main","after":"abc","repository":"x"}`,
		"name is null":            `{"ref":"refs/heads/main","after":"abc","repository":{"name":null,"default_branch":"main"}}`,
		"unterminated string":     `{"ref":"refs/heads/main,"after":"abc"}`,
		"value missing after key": `{"ref":}`,
	} {
		t.Run(name, func(t *testing.T) {
			if ev, err := decodePush([]byte(payload)); !IsBadPayload(err) {
				t.Errorf("decodePush = %+v, %v; want a malformed payload error", ev, err)
			}
		})
	}
}

// BenchmarkDecodePush is the payload reading of every push webhook.
func BenchmarkDecodePush(b *testing.B) {
	payload, err := os.ReadFile("../testdata/webhooks/push/with-new-branch.payload.json")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodePush(payload); err != nil {
			b.Fatal(err)
		}
	}
}
