// Package repocheck holds no code: its tests look at the repository as a
// whole, so `go test ./...` (and so `make test`) keeps it standing alone
// and consistent:
//
//   - every relative Markdown link resolves to a file (and heading) inside
//     the repository, and no link or text sends a reader to a document
//     users do not have;
//   - every log/slog call puts errors under one key, "err", so one query
//     finds them all whatever the package.
package repocheck
