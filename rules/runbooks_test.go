package rules_test

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode"
)

// anchors returns the anchors GitHub gives to the headings of a Markdown
// document: lower-cased, punctuation other than '-' and '_' dropped, spaces
// turned into '-', and "-1", "-2"... appended to repeats. Lines inside
// fenced code blocks are not headings.
func anchors(md []byte) map[string]bool {
	out := map[string]bool{}
	count := map[string]int{}
	fence := ""
	sc := bufio.NewScanner(bytes.NewReader(md))
	for sc.Scan() {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if fence != "" {
			if strings.HasPrefix(trimmed, fence) {
				fence = ""
			}
			continue
		}
		if strings.HasPrefix(trimmed, "```") || strings.HasPrefix(trimmed, "~~~") {
			fence = trimmed[:3]
			continue
		}
		if !strings.HasPrefix(line, "#") {
			continue
		}
		text := strings.TrimLeft(line, "#")
		if len(line)-len(text) > 6 || (text != "" && text[0] != ' ') {
			continue
		}
		var b strings.Builder
		for _, r := range strings.ToLower(strings.TrimSpace(text)) {
			switch {
			case unicode.IsLetter(r), unicode.IsDigit(r), r == '-', r == '_':
				b.WriteRune(r)
			case r == ' ':
				b.WriteRune('-')
			}
		}
		a := b.String()
		if n := count[a]; n > 0 {
			out[fmt.Sprintf("%s-%d", a, n)] = true
		} else {
			out[a] = true
		}
		count[a]++
	}
	return out
}

func TestAnchors(t *testing.T) {
	md := "# Odoo runbooks\n## Bus/longpoll stalls\n### OdooCronStuck\n#### Check\n#### Check\n" +
		"```bash\n# not a heading\n```\n#NoSpace\n"
	got := anchors([]byte(md))
	for _, a := range []string{"odoo-runbooks", "buslongpoll-stalls", "odoocronstuck", "check", "check-1"} {
		if !got[a] {
			t.Errorf("anchor %q missing from %v", a, got)
		}
	}
	for _, a := range []string{"not-a-heading", "nospace"} {
		if got[a] {
			t.Errorf("anchor %q must not exist", a)
		}
	}
}

// TestRunbookURLs checks that every runbook_url of the pack, and every link
// inside the runbooks to their own sections, resolves to a heading of
// docs/runbooks.md.
func TestRunbookURLs(t *testing.T) {
	md, err := os.ReadFile(filepath.Join("..", "docs", "runbooks.md"))
	if err != nil {
		t.Fatal(err)
	}
	have := anchors(md)
	for _, r := range alerts(loadRules(t)) {
		u := r.Annotations["runbook_url"]
		base, anchor, ok := strings.Cut(u, "#")
		if !ok || !strings.HasSuffix(base, "/docs/runbooks.md") {
			t.Errorf("%s: runbook_url %q does not point into docs/runbooks.md", r.Alert, u)
			continue
		}
		if !have[anchor] {
			t.Errorf("%s: runbook_url %q: no heading with anchor %q in docs/runbooks.md", r.Alert, u, anchor)
		}
	}
	// Links between sections: [text](#anchor).
	for rest := string(md); ; {
		i := strings.Index(rest, "](#")
		if i < 0 {
			break
		}
		rest = rest[i+3:]
		anchor, _, _ := strings.Cut(rest, ")")
		if !have[anchor] {
			t.Errorf("docs/runbooks.md links to #%s, which is no heading", anchor)
		}
	}
}
