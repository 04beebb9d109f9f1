// Package ui is the rollout page a NOC puts on its wall screens: bridges
// by PoP with their health and applied revision, each service's phases as
// a timeline per PoP with the active one and a countdown to the next
// boundary, and the top offenders.
//
// It is plain HTML, CSS and one JavaScript module, embedded in the binary:
// nothing comes from a CDN and there is no build step. package api serves
// it at /ui/ on the API listener. The assets need no token; the page reads
// everything through the REST API (/v1/status, /v1/rollout,
// /v1/offenders) with the token the user gives it, kept in the browser's
// sessionStorage (gone when the tab closes) and sent as a Bearer header,
// so the page can show nothing the token could not read.
package ui

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed static
var static embed.FS

// Prefix is the path the page is served under.
const Prefix = "/ui/"

// Handler serves the page's assets under Prefix. Answers carry a
// Content-Security-Policy that allows only the page's own origin: no
// inline script, no third-party anything.
func Handler() http.Handler {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	files := http.StripPrefix(Prefix, http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "+
			"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		// Small files, and a new binary must not run an old page.
		h.Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})
}
