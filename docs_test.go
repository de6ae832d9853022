package fluxauth_test

import (
	"bufio"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

// The documentation is held to the repository: every relative Markdown link reaches a file (and, with
// a #fragment, a heading in it), every repository path a page cites in backticks exists, and no file
// cites a document from outside the repository.

var (
	mdLink     = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	mdCode     = regexp.MustCompile("`([^`\\s]+)`")
	repoPathRe = regexp.MustCompile(`^[A-Za-z.][\w.-]*(/[\w.-]+)*/?$`)
)

// repoFiles returns the repository's files (relative, slash-separated), skipping .git and
// node_modules.
func repoFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if !d.IsDir() {
			files = append(files, filepath.ToSlash(path))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// slug is GitHub's anchor for a heading: lower case, punctuation other than - and _ dropped,
// spaces to -.
func slug(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// anchors returns the anchors of a Markdown file's headings (outside code fences), numbered like
// GitHub's when a heading repeats.
func anchors(t *testing.T, path string) map[string]bool {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]bool{}
	seen := map[string]int{}
	fence := false
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "```") {
			fence = !fence
			continue
		}
		if fence || !strings.HasPrefix(line, "#") {
			continue
		}
		text := strings.TrimLeft(line, "#")
		if !strings.HasPrefix(text, " ") {
			continue
		}
		s := slug(strings.ReplaceAll(text, "`", ""))
		if n := seen[s]; n > 0 {
			out[s+"-"+strconv.Itoa(n)] = true
		} else {
			out[s] = true
		}
		seen[s]++
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// proseLines returns a Markdown file's lines outside code fences, with their numbers.
func proseLines(t *testing.T, path string) map[int]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]string{}
	fence := false
	for i, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "```") {
			fence = !fence
			continue
		}
		if !fence {
			out[i+1] = line
		}
	}
	return out
}

// eachMatch calls fn with every match of re on the prose lines (outside code fences) of every
// Markdown file of the repository, with the file and the line number.
func eachMatch(t *testing.T, re *regexp.Regexp, fn func(md string, n int, m []string)) {
	t.Helper()
	for _, md := range repoFiles(t) {
		if !strings.HasSuffix(md, ".md") {
			continue
		}
		for n, line := range proseLines(t, md) {
			for _, m := range re.FindAllStringSubmatch(line, -1) {
				fn(md, n, m)
			}
		}
	}
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func TestMarkdownLinksReachTheirTargets(t *testing.T) {
	anchorCache := map[string]map[string]bool{}
	anchorsOf := func(path string) map[string]bool {
		if a, ok := anchorCache[path]; ok {
			return a
		}
		a := anchors(t, path)
		anchorCache[path] = a
		return a
	}
	checked := 0
	eachMatch(t, mdLink, func(md string, n int, m []string) {
		target := m[1]
		if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
			return
		}
		file, frag, _ := strings.Cut(target, "#")
		dest := md
		if file != "" {
			dest = filepath.ToSlash(filepath.Join(filepath.Dir(md), file))
			if !exists(dest) {
				t.Errorf("%s:%d: link %q: %s does not exist", md, n, target, dest)
				return
			}
		}
		checked++
		if frag != "" && strings.HasSuffix(dest, ".md") && !anchorsOf(dest)[frag] {
			t.Errorf("%s:%d: link %q: %s has no heading with anchor #%s", md, n, target, dest, frag)
		}
	})
	if checked == 0 {
		t.Fatal("no relative links found: the walk is broken")
	}
}

// A backticked word that starts with one of the repository's top-level entries and has a slash, or
// that names a .go or .md file, is a path in the repository and must exist.
func TestMarkdownCitedPathsExist(t *testing.T) {
	top := map[string]bool{}
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		top[e.Name()] = true
	}
	checked := 0
	eachMatch(t, mdCode, func(md string, n int, m []string) {
		p := strings.TrimPrefix(m[1], "./")
		if !repoPathRe.MatchString(p) {
			return
		}
		first, _, slash := strings.Cut(p, "/")
		isFile := strings.HasSuffix(p, ".go") || strings.HasSuffix(p, ".md")
		if !(slash && top[first]) && !(isFile && !slash) {
			return
		}
		checked++
		if !exists(p) {
			t.Errorf("%s:%d: cites `%s`, which is not in the repository", md, n, m[1])
		}
	})
	if checked == 0 {
		t.Fatal("no cited paths found: the scan is broken")
	}
}

// The project carries its own documentation: no file cites a document outside the repository.
func TestNoFileCitesADocumentOutsideTheRepository(t *testing.T) {
	outside := []string{"SPEC" + ".md", "STYLE" + ".md", "../" + "shared"}
	for _, f := range repoFiles(t) {
		if strings.HasSuffix(f, ".png") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range outside {
			if strings.Contains(string(b), o) {
				t.Errorf("%s cites %s, which is not in the repository", f, o)
			}
		}
	}
}
