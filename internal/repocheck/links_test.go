package repocheck

import (
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"
)

var (
	inlineLink = regexp.MustCompile(`!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)`)
	refLink    = regexp.MustCompile(`^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$`)
	codeSpan   = regexp.MustCompile("`[^`]*`")
	heading    = regexp.MustCompile(`^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$`)
	scheme     = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]*:`)
)

// markdownLines returns the lines of a Markdown file that are prose: fenced
// code blocks are blanked (kept as empty lines so line numbers hold).
func markdownLines(text string) []string {
	lines := strings.Split(text, "\n")
	fence := ""
	for i, l := range lines {
		trimmed := strings.TrimSpace(l)
		switch {
		case fence != "":
			if strings.HasPrefix(trimmed, fence) {
				fence = ""
			}
			lines[i] = ""
		case strings.HasPrefix(trimmed, "```") || strings.HasPrefix(trimmed, "~~~"):
			fence = trimmed[:3]
			lines[i] = ""
		}
	}
	return lines
}

// anchors are the heading ids GitHub gives a Markdown file.
func anchors(text string) map[string]bool {
	out := map[string]bool{}
	seen := map[string]int{}
	for _, l := range markdownLines(text) {
		m := heading.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		slug := slugify(m[2])
		if n := seen[slug]; n > 0 {
			out[slug+"-"+itoa(n)] = true
		} else {
			out[slug] = true
		}
		seen[slug]++
	}
	return out
}

// slugify is GitHub's heading id: link text only, lower case, letters,
// digits, '-' and '_' kept, spaces to '-', everything else dropped.
func slugify(h string) string {
	h = inlineLink.ReplaceAllStringFunc(h, func(s string) string {
		return s[strings.Index(s, "[")+1 : strings.Index(s, "]")]
	})
	var b strings.Builder
	for _, r := range strings.ToLower(h) {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_':
			b.WriteRune(r)
		case r == ' ':
			b.WriteByte('-')
		}
	}
	return b.String()
}

func itoa(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + itoa(n%10)
}

// TestMarkdownLinks: every relative link in every Markdown file resolves
// to a file inside the repository (and to a heading of it when it names
// one); none climbs out of the repository; README.md links nowhere else.
func TestMarkdownLinks(t *testing.T) {
	root := repoRoot(t)
	files := trackedFiles(t, root, ".md")
	if len(files) < 5 {
		t.Fatalf("only %d Markdown files found under %s", len(files), root)
	}
	anchorCache := map[string]map[string]bool{}
	anchorsOf := func(rel string) map[string]bool {
		if a, ok := anchorCache[rel]; ok {
			return a
		}
		b, _ := os.ReadFile(filepath.Join(root, rel))
		anchorCache[rel] = anchors(string(b))
		return anchorCache[rel]
	}
	checked := 0
	for _, file := range files {
		b, err := os.ReadFile(filepath.Join(root, file))
		if err != nil {
			t.Fatal(err)
		}
		for n, line := range markdownLines(string(b)) {
			line = codeSpan.ReplaceAllString(line, "")
			var targets []string
			for _, m := range inlineLink.FindAllStringSubmatch(line, -1) {
				targets = append(targets, m[1])
			}
			if m := refLink.FindStringSubmatch(line); m != nil {
				targets = append(targets, m[1])
			}
			for _, target := range targets {
				where := file + ":" + itoa(n+1) + ": link " + target
				if scheme.MatchString(target) {
					if file == "README.md" {
						t.Errorf("%s: README.md links only inside the repository", where)
					}
					continue
				}
				checked++
				rel, frag, _ := strings.Cut(target, "#")
				dest := file
				if rel != "" {
					if strings.HasPrefix(rel, "/") {
						t.Errorf("%s: absolute path; use a path relative to %s", where, file)
						continue
					}
					dest = path.Clean(path.Join(path.Dir(file), rel))
					if dest == ".." || strings.HasPrefix(dest, "../") {
						t.Errorf("%s: leaves the repository", where)
						continue
					}
					fi, err := os.Stat(filepath.Join(root, dest))
					if err != nil {
						t.Errorf("%s: %s does not exist", where, dest)
						continue
					}
					if fi.IsDir() {
						if frag != "" {
							t.Errorf("%s: a heading of a directory", where)
						}
						continue
					}
				}
				if frag != "" && strings.HasSuffix(dest, ".md") && !anchorsOf(dest)[frag] {
					t.Errorf("%s: %s has no heading #%s", where, dest, frag)
				}
			}
		}
	}
	t.Logf("%d relative links in %d Markdown files resolve", checked, len(files))
}

// Nothing in the repository refers to numbered sections of an outside
// document, or to files beside the repository.
func TestNoOutsideReferences(t *testing.T) {
	root := repoRoot(t)
	forbidden := []string{"contract " + "§", "../" + "shared/", "platform" + "-notes"}
	for _, file := range trackedFiles(t, root, ".md", ".go", ".yaml", ".yml", ".sh", ".py", "Makefile") {
		b, err := os.ReadFile(filepath.Join(root, file))
		if err != nil {
			t.Fatal(err)
		}
		for n, line := range strings.Split(string(b), "\n") {
			for _, f := range forbidden {
				if strings.Contains(line, f) {
					t.Errorf("%s:%d: %q refers to a document users do not have; say it in the repository's own words (docs/)", file, n+1, f)
				}
			}
		}
	}
}

func TestSlugify(t *testing.T) {
	for in, want := range map[string]string{
		"op25b — Outbound Port 25 Blocking on Open vSwitch": "op25b--outbound-port-25-blocking-on-open-vswitch",
		"`op25bd` flags":                       "op25bd-flags",
		"Choices where the contract is silent": "choices-where-the-contract-is-silent",
		"GET /v1/status":                       "get-v1status",
		"See [the API](api/README.md) now":     "see-the-api-now",
		"1. What is enforced (semantics)":      "1-what-is-enforced-semantics",
	} {
		if got := slugify(in); got != want {
			t.Errorf("slugify(%q) = %q, want %q", in, got, want)
		}
	}
	a := anchors("# A\n\n```\n# not a heading\n```\n## A\n### B c\n")
	for _, want := range []string{"a", "a-1", "b-c"} {
		if !a[want] {
			t.Errorf("anchors lack %q: %v", want, a)
		}
	}
	if a["not-a-heading"] {
		t.Errorf("a comment in a code block counted as a heading")
	}
}
