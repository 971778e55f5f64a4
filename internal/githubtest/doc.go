// Package githubtest is an in-process fake of GitHub's REST API for tests:
// stateful repositories (commits, contents, tarballs), check runs,
// deployments, comments, reactions, collaborator permissions, Actions runs
// and App manifest conversions, with request recording and fault injection.
//
// Every request is checked against GitHub's OpenAPI description (reduced to
// the operations the fake keeps, embedded from testdata/api.github.com.json):
// a request GitHub would not accept, or one for an endpoint the fake does not
// serve, fails the test.
// Answers have GitHub's response shapes, so go-github decodes them.
//
//	gh := githubtest.New(t)
//	repo := gh.AddRepo("octo/app", "main")
//	sha := repo.Commit("main", map[string]githubtest.File{".github/railyard.yml": {Content: cfg}})
//	cc := gh.ClientCreator() // or GITHUB_V3_API_URL=gh.URL, gh.PrivateKeyPEM(), githubtest.AppID
//	// … run the code under test …
//	runs := repo.CheckRuns() // what a user would see on GitHub
//
// It is for tests only and must not be imported by production code. It
// stores and shows what GitHub would; it never decides anything for
// Railyard.
package githubtest
