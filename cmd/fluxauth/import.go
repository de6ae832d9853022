package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/fluxstudio/fluxauth"
	"github.com/fluxstudio/fluxauth/account"
	"github.com/fluxstudio/fluxauth/emailaddr"
	"github.com/fluxstudio/fluxauth/password"
)

const (
	// importBatch is how many lines one transaction of an import writes: a bounded slice of memory
	// and of parameters (9 a user, under both databases' limits), large enough that a round trip
	// is spent on a thousand users.
	importBatch = 1000
	// maxImportLine bounds a line; a longer one is refused without being held in memory.
	maxImportLine = 64 << 10
	// maxSubjectLen bounds a provider's subject (Google's and Apple's are far shorter).
	maxSubjectLen = 255
	// importAttempts bounds how often a batch a concurrent writer made fail (an update's new email
	// taken between its read and its write) is classified and applied again.
	importAttempts = 3
	// progressEvery is how often a terminal sees the progress line.
	progressEvery = time.Second
)

// importLine is a line of the import file as written. Pointers tell a field left out (or null) from
// one given empty; unknown fields are refused, so that a misspelt "password_hash" refuses the line
// instead of importing an account without its password.
type importLine struct {
	ID            json.RawMessage `json:"id"`
	Email         *string         `json:"email"`
	Name          *string         `json:"name"`
	UserType      *string         `json:"userType"`
	PasswordHash  *string         `json:"passwordHash"`
	EmailVerified *bool           `json:"emailVerified"`
	CreatedAt     *string         `json:"createdAt"`
	Google        *string         `json:"google"`
	Apple         *string         `json:"apple"`
}

// importDB is what an import needs of the database.
type importDB interface {
	fluxauth.UserImporter
	Update(ctx context.Context, fn func(tx fluxauth.Tx) error) error
}

// importCounts is an import's summary.
type importCounts struct {
	Lines, Created, Unchanged, Updated, Refused, SessionsRevoked int
}

// importer runs one `users import`: it reads lines, checks each like a signup, gathers them into
// batches of distinct IDs, emails and identities, and reports every line that is not created or
// unchanged.
type importer struct {
	db        importDB
	opt       fluxauth.ImportOptions
	userTypes []string // admin and FLUXAUTH_SIGNUP_USER_TYPES
	now       func() time.Time
	report    io.Writer
	progress  io.Writer // nil unless stderr is a terminal
	size      int64     // the input's size when known, for the ETA
	scratch   *scratch  // dry run: what earlier lines would have written

	// counts is the writer's but for Lines, the reader's; both are done when run returns.
	counts    importCounts
	started   time.Time
	lastShown time.Time

	// The reader's: the bytes read, the chunk it is filling and the keys of that chunk's batch.
	read int64
	cur  *importChunk
	keys map[string]bool

	// afterBatch, when set, runs after each batch (tests measure memory there).
	afterBatch func()
}

// cmdUsersImport is `fluxauth users import [--dry-run] [--update] FILE|-`.
func cmdUsersImport(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	var dryRun, update bool
	cfg, rest, err := parseConfig("users import", args, getenv, stderr, func(fs *flag.FlagSet) {
		fs.BoolVar(&dryRun, "dry-run", false, "check the whole file and report what an import would do, writing nothing")
		fs.BoolVar(&update, "update", false, "make accounts that exist with other data what their lines give (else they are reported)")
	})
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return errors.New("usage: fluxauth users import [--dry-run] [--update] FILE|-")
	}
	name := rest[0]
	in, size := stdin, int64(0)
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		defer f.Close()
		if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
			size = st.Size()
		}
		in = f
	}
	db, err := openCurrentDatabase(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	im := &importer{
		db:        db,
		opt:       fluxauth.ImportOptions{Update: update, DryRun: dryRun, By: cliActor()},
		userTypes: append([]string{fluxauth.UserTypeAdmin}, cfg.Account.SignupUserTypes...),
		now:       fluxauth.SystemClock{}.Now,
		report:    stdout,
		size:      size,
	}
	if isTerminal(stderr) {
		im.progress = stderr
	}
	if dryRun {
		if im.scratch, err = openScratch(ctx); err != nil {
			return err
		}
		defer im.scratch.close()
	}
	runErr := im.run(ctx, in)
	if !dryRun {
		if err := im.recordEvent(context.WithoutCancel(ctx), name, runErr != nil); err != nil {
			if runErr == nil {
				runErr = err
			} else {
				fmt.Fprintln(stderr, "fluxauth: the users_imported event was not recorded:", err)
			}
		}
	}
	im.summary()
	if runErr != nil {
		return runErr
	}
	if im.counts.Refused > 0 {
		return fmt.Errorf("%d of %d lines refused (listed above)", im.counts.Refused, im.counts.Lines)
	}
	return nil
}

// isTerminal reports whether w is a character device: a terminal, not a file or a pipe.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// importChunk is what the reader hands the writer: a batch of checked lines and the refusals of
// the lines read among them, in line order, with how far the reader had got.
type importChunk struct {
	batch []fluxauth.ImportedUser
	lines []int
	held  []heldRefusal
	first int   // the chunk's first line
	upTo  int   // lines read when it was handed over
	read  int64 // bytes read then
}

// run imports every line of r. Reading and checking lines (the reader, on the calling goroutine)
// overlaps writing the batch before (the writer): at most three chunks exist at once, the one being
// filled, one handed over and the one being written. It stops early only when the database fails
// or ctx ends, saying at which line: what was written before stays, and importing the file again
// resumes (the lines written come back unchanged).
func (im *importer) run(ctx context.Context, r io.Reader) error {
	im.started = im.now()
	im.lastShown = im.started
	im.keys = map[string]bool{}
	im.cur = &importChunk{first: 1}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	chunks := make(chan *importChunk, 1)
	var writeErr error
	written := make(chan struct{})
	go func() {
		defer close(written)
		for c := range chunks {
			if writeErr != nil {
				continue // drained: the reader stops at its next line
			}
			if err := im.flush(ctx, c); err != nil {
				writeErr = fmt.Errorf("import stopped at line %d: %w; the lines before it are imported, and importing the file again resumes", c.first, err)
				cancel()
			}
		}
	}()
	readErr := im.readAll(ctx, r, chunks)
	close(chunks)
	<-written
	if writeErr != nil {
		return writeErr
	}
	if readErr != nil {
		return fmt.Errorf("import stopped at line %d: %w; the lines before its batch are imported, and importing the file again resumes", im.counts.Lines, readErr)
	}
	if im.progress != nil {
		im.showProgress(true, im.counts.Lines, im.read)
	}
	return nil
}

// readAll reads, checks and batches every line of r, handing each full chunk to chunks.
func (im *importer) readAll(ctx context.Context, r io.Reader, chunks chan<- *importChunk) error {
	br := bufio.NewReaderSize(r, maxImportLine+1)
	hand := func() error {
		c := im.cur
		c.upTo, c.read = im.counts.Lines, im.read
		im.cur = &importChunk{first: im.counts.Lines + 1}
		clear(im.keys)
		if len(c.batch) == 0 && len(c.held) == 0 {
			return nil
		}
		select {
		case chunks <- c:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		line, tooLong, err := readLine(br)
		im.read += int64(len(line))
		if err == nil {
			im.read++ // the line's end
		}
		if len(line) > 0 || tooLong {
			im.counts.Lines++
			if err := im.take(line, tooLong, hand); err != nil {
				return err
			}
		} else if err == nil {
			im.counts.Lines++ // an empty line, skipped
		}
		if err == io.EOF {
			return hand()
		}
		if err != nil {
			return err
		}
	}
}

// readLine returns the next line without its end. A line longer than maxImportLine is read to its
// end and dropped, tooLong set.
func readLine(br *bufio.Reader) (line []byte, tooLong bool, err error) {
	for {
		chunk, err := br.ReadSlice('\n')
		if !tooLong && err != bufio.ErrBufferFull {
			line = bytes.TrimRight(chunk, "\r\n")
			if len(line) > maxImportLine {
				return nil, true, err
			}
			return line, false, err
		}
		tooLong = true
		if err != bufio.ErrBufferFull {
			return nil, true, err
		}
	}
}

// take checks one line and adds it to the batch, flushing the batch first when the line repeats an
// ID, email or identity the batch holds: a batch's lines are distinct, and a repeat is classified
// against what its earlier line wrote.
func (im *importer) take(raw []byte, tooLong bool, hand func() error) error {
	n := im.counts.Lines
	reason := ""
	var u *fluxauth.ImportedUser
	switch {
	case tooLong:
		reason = fmt.Sprintf("the line is longer than %d KiB", maxImportLine>>10)
	case len(bytes.TrimSpace(raw)) == 0:
		return nil
	default:
		u, reason = im.check(raw)
	}
	if reason != "" {
		// Refusals ride with the chunk, so that the report keeps line order; a file of nothing
		// but refused lines still hands its chunks over at the batch's size.
		im.cur.held = append(im.cur.held, heldRefusal{n, reason})
		if len(im.cur.held) == importBatch {
			return hand()
		}
		return nil
	}
	keys := importKeys(u)
	for _, k := range keys {
		if im.keys[k] {
			if err := hand(); err != nil {
				return err
			}
			break
		}
	}
	for _, k := range keys {
		im.keys[k] = true
	}
	im.cur.batch = append(im.cur.batch, *u)
	im.cur.lines = append(im.cur.lines, n)
	if len(im.cur.batch) == importBatch {
		return hand()
	}
	return nil
}

// importKeys are what two lines of one batch may not share.
func importKeys(u *fluxauth.ImportedUser) []string {
	keys := []string{"id\x00" + u.User.ID, "email\x00" + emailaddr.Canonical(u.User.Email)}
	for _, id := range u.Identities {
		keys = append(keys, id.Provider+"\x00"+id.Subject)
	}
	return keys
}

// check parses and checks a line as signup checks its input (a valid address, a name of at most 100
// characters), with the import's own rules for the rest; it returns the account or why the line is
// refused. A reason never quotes a password hash.
func (im *importer) check(raw []byte) (*fluxauth.ImportedUser, string) {
	var l importLine
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); err != nil {
		return nil, "not a JSON object of the import's fields: " + jsonProblem(err)
	}
	if dec.More() {
		return nil, "more than one JSON value on the line"
	}
	now := im.now()
	in := &fluxauth.ImportedUser{}
	u := &in.User
	var problems []string
	bad := func(field, why string) { problems = append(problems, field+" "+why) }

	id, ok := importID(l.ID)
	switch {
	case !ok:
		bad("id", "must be a string or a whole number")
	case id == "":
		bad("id", "is required")
	case !fluxauth.ValidUserID(id):
		bad("id", "must be 1 to 128 of A-Z a-z 0-9 . _ ~ : @ -")
	}
	u.ID = id
	if l.Email == nil || strings.TrimSpace(*l.Email) == "" {
		bad("email", "is required")
	} else if u.Email = account.NormalizeEmail(*l.Email); !account.ValidEmail(u.Email) {
		bad("email", "must be a valid email address")
	}
	if l.Name != nil {
		in.Given |= fluxauth.ImportName
		u.Name = strings.TrimSpace(*l.Name)
		if utf8.RuneCountInString(u.Name) > account.MaxNameLen || !utf8.ValidString(u.Name) {
			bad("name", fmt.Sprintf("must be at most %d characters", account.MaxNameLen))
		}
	}
	u.UserType = fluxauth.UserTypeClient
	if l.UserType != nil {
		in.Given |= fluxauth.ImportUserType
		u.UserType = strings.TrimSpace(*l.UserType)
	}
	if !slices.Contains(im.userTypes, u.UserType) {
		bad("userType", "must be one of: "+strings.Join(im.userTypes, ", "))
	}
	if l.PasswordHash != nil {
		in.Given |= fluxauth.ImportPasswordHash
		if u.PasswordHash = *l.PasswordHash; u.PasswordHash != "" {
			if err := password.CheckImported(u.PasswordHash); err != nil {
				bad("passwordHash", "is refused: "+strings.TrimPrefix(err.Error(), password.ErrImportRefused.Error()+": "))
			}
		}
	}
	verified := l.EmailVerified != nil && *l.EmailVerified
	if l.EmailVerified != nil {
		in.Given |= fluxauth.ImportEmailVerified
	}
	if verified {
		u.EmailVerifiedAt = now
	}
	u.CreatedAt, u.UpdatedAt = now, now
	if l.CreatedAt != nil {
		in.Given |= fluxauth.ImportCreatedAt
		t, err := time.Parse(time.RFC3339Nano, *l.CreatedAt)
		switch {
		case err != nil:
			bad("createdAt", "must be an RFC 3339 time, like 2024-05-01T12:00:00Z")
		case t.After(now.Add(time.Minute)):
			bad("createdAt", "is in the future")
		default:
			u.CreatedAt = t.UTC()
		}
	}
	for _, p := range []struct {
		name    string
		subject *string
	}{{"google", l.Google}, {"apple", l.Apple}} {
		if p.subject == nil {
			continue
		}
		s := *p.subject
		if s == "" || len(s) > maxSubjectLen || strings.IndexFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f || r > '~' }) >= 0 {
			bad(p.name, fmt.Sprintf("must be the provider's subject: 1 to %d printable ASCII characters", maxSubjectLen))
			continue
		}
		in.Identities = append(in.Identities, fluxauth.Identity{Provider: p.name, Subject: s, UserID: u.ID,
			Email: u.Email, EmailVerified: verified, CreatedAt: u.CreatedAt})
	}
	if len(problems) > 0 {
		return nil, strings.Join(problems, "; ")
	}
	return in, ""
}

// importID reads the id field: a string, or a whole number as the legacy server's integer keys
// are ("123"). ok is false for any other JSON value; a missing or null id is "".
func importID(raw json.RawMessage) (string, bool) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", true
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, true
	}
	if _, err := strconv.ParseUint(string(raw), 10, 64); err == nil {
		return string(raw), true
	}
	return "", false
}

// jsonProblem says what a decoding error found, without quoting the line (which may hold a hash).
func jsonProblem(err error) string {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return fmt.Sprintf("invalid JSON at byte %d", syntax.Offset)
	case errors.As(err, &typ):
		return fmt.Sprintf("%s must be a JSON %s", typ.Field, typ.Type.Kind())
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return "unknown field " + strings.TrimPrefix(err.Error(), "json: unknown field ")
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "the JSON ends early"
	}
	return "invalid JSON"
}

type heldRefusal struct {
	line   int
	reason string
}

// refuse counts a refused line and reports it (the writer's).
func (im *importer) refuse(line int, reason string) {
	im.counts.Refused++
	fmt.Fprintf(im.report, "line %d: refused: %s\n", line, reason)
}

// flush writes a chunk's batch (a dry run: classifies it) and reports its lines in order.
func (im *importer) flush(ctx context.Context, c *importChunk) error {
	batch, lines := c.batch, c.lines
	res := make([]fluxauth.ImportResult, len(batch))
	earlier := make([]int, len(batch)) // dry run: the earlier line a result is about
	send := make([]int, 0, len(batch))
	if im.scratch != nil && len(batch) > 0 {
		var err error
		if send, err = im.scratch.classify(ctx, batch, res, earlier, im.opt); err != nil {
			return err
		}
	} else {
		for i := range batch {
			send = append(send, i)
		}
	}
	if len(send) > 0 {
		sub := make([]fluxauth.ImportedUser, len(send))
		for k, i := range send {
			sub[k] = batch[i]
		}
		var out []fluxauth.ImportResult
		var err error
		for attempt := 1; ; attempt++ {
			out, err = im.db.ImportUsers(ctx, sub, im.opt)
			if err == nil || attempt == importAttempts || !errors.Is(err, fluxauth.ErrConflict) {
				break
			}
		}
		if err != nil {
			return err
		}
		for k, i := range send {
			res[i] = out[k]
		}
	}
	if im.scratch != nil && len(batch) > 0 {
		if err := im.scratch.record(ctx, batch, lines, res); err != nil {
			return err
		}
	}
	held := c.held
	for i, r := range res {
		for len(held) > 0 && held[0].line < lines[i] {
			im.refuse(held[0].line, held[0].reason)
			held = held[1:]
		}
		im.tell(lines[i], &batch[i], r, earlier[i])
	}
	for _, h := range held {
		im.refuse(h.line, h.reason)
	}
	if im.progress != nil {
		im.showProgress(false, c.upTo, c.read)
	}
	if im.afterBatch != nil {
		im.afterBatch()
	}
	return nil
}

// tell counts a line's outcome and reports it unless it was created or unchanged.
func (im *importer) tell(line int, in *fluxauth.ImportedUser, r fluxauth.ImportResult, earlier int) {
	would := ""
	if im.opt.DryRun {
		would = "would be "
	}
	about := "user " + in.User.ID
	if earlier > 0 {
		about = fmt.Sprintf("user %s (as line %d gives it)", in.User.ID, earlier)
	}
	switch r.Outcome {
	case fluxauth.ImportCreated:
		im.counts.Created++
	case fluxauth.ImportUnchanged:
		im.counts.Unchanged++
	case fluxauth.ImportUpdated:
		im.counts.Updated++
		im.counts.SessionsRevoked += r.SessionsRevoked
		fmt.Fprintf(im.report, "line %d: %supdated %s: %s\n", line, would, about, strings.Join(r.Fields, ", "))
	case fluxauth.ImportDiffers:
		im.refuse(line, fmt.Sprintf("%s exists with other data (%s); --update applies the line", about, strings.Join(r.Fields, ", ")))
	case fluxauth.ImportEmailTaken:
		other := "user " + r.OtherUserID
		if earlier > 0 {
			other = fmt.Sprintf("user %s of line %d", r.OtherUserID, earlier)
		}
		im.refuse(line, fmt.Sprintf("email %s belongs to %s, not to this line's user %s", in.User.Email, other, in.User.ID))
	case fluxauth.ImportIdentityTaken:
		other := "user " + r.OtherUserID
		if earlier > 0 {
			other = fmt.Sprintf("user %s of line %d", r.OtherUserID, earlier)
		}
		im.refuse(line, fmt.Sprintf("the %s identity of this line's user %s is linked to %s", r.Provider, in.User.ID, other))
	default:
		im.refuse(line, "the accounts it needs kept changing during the import; importing the file again classifies it anew")
	}
}

// showProgress writes the progress line: lines read, their rate and, when the input's size is known,
// the time left.
func (im *importer) showProgress(final bool, lines int, read int64) {
	now := im.now()
	if !final && now.Sub(im.lastShown) < progressEvery {
		return
	}
	im.lastShown = now
	fmt.Fprint(im.progress, "\r\x1b[K"+progressLine(lines, read, im.size, now.Sub(im.started)))
	if final {
		fmt.Fprintln(im.progress)
	}
}

// progressLine is "12,000 lines · 24,100 lines/s · 0:42 left".
func progressLine(lines int, read, size int64, elapsed time.Duration) string {
	s := groupDigits(lines) + " lines"
	if elapsed <= 0 {
		return s
	}
	s += " · " + groupDigits(int(float64(lines)/elapsed.Seconds())) + " lines/s"
	if size > 0 && read > 0 && read < size {
		left := time.Duration(float64(elapsed) * float64(size-read) / float64(read)).Round(time.Second)
		s += fmt.Sprintf(" · %d:%02d left", int(left.Minutes()), int(left.Seconds())%60)
	}
	return s
}

// groupDigits writes n with a comma between each group of three digits.
func groupDigits(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0 && s[i-1] != '-'; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func (im *importer) summary() {
	c := im.counts
	if im.opt.DryRun {
		fmt.Fprintf(im.report, "dry run, nothing written: of %d lines, would create %d, unchanged %d, would update %d, refused %d\n",
			c.Lines, c.Created, c.Unchanged, c.Updated, c.Refused)
		return
	}
	fmt.Fprintf(im.report, "of %d lines: created %d, unchanged %d, updated %d, refused %d\n", c.Lines, c.Created, c.Unchanged, c.Updated, c.Refused)
	if c.SessionsRevoked > 0 {
		fmt.Fprintf(im.report, "%d sessions of updated accounts revoked (their password hash or email changed)\n", c.SessionsRevoked)
	}
}

// recordEvent writes the run's one users_imported event.
func (im *importer) recordEvent(ctx context.Context, file string, stopped bool) error {
	if file != "-" {
		file = filepath.Base(file)
	}
	c := im.counts
	return im.db.Update(ctx, func(tx fluxauth.Tx) error {
		return tx.InsertEvents(ctx, &fluxauth.SecurityEvent{
			ID: uuid.Must(uuid.NewV7()).String(), Type: fluxauth.EventUsersImported, Severity: fluxauth.SeverityInfo,
			Metadata: map[string]any{"by": im.opt.By, "file": file, "update": im.opt.Update, "stopped": stopped, "lines": c.Lines,
				"created": c.Created, "unchanged": c.Unchanged, "updated": c.Updated, "refused": c.Refused, "sessionsRevoked": c.SessionsRevoked},
			CreatedAt: im.now(),
		})
	})
}

// scratch is a dry run's memory of what its earlier lines would have written, in a temporary SQLite
// file so that it stays on disk whatever the input's size: the accounts by ID (with the line that
// gave them), and which ID each canonical email and identity would belong to.
type scratch struct {
	db   *sql.DB
	path string
}

func openScratch(ctx context.Context) (*scratch, error) {
	dir, err := os.MkdirTemp("", "fluxauth-import-*")
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "dry-run.db")
	db, err := sql.Open("sqlite", path+"?_pragma=journal_mode(OFF)&_pragma=synchronous(OFF)")
	if err == nil {
		db.SetMaxOpenConns(1)
		_, err = db.ExecContext(ctx, `
			CREATE TABLE ids (id TEXT PRIMARY KEY, line INTEGER NOT NULL, data BLOB NOT NULL);
			CREATE TABLE owners (key TEXT PRIMARY KEY, id TEXT NOT NULL, line INTEGER NOT NULL);`)
	}
	if err != nil {
		if db != nil {
			db.Close()
		}
		os.RemoveAll(dir)
		return nil, fmt.Errorf("dry run: scratch file: %w", err)
	}
	return &scratch{db: db, path: dir}, nil
}

func (s *scratch) close() {
	s.db.Close()
	os.RemoveAll(s.path)
}

// classify decides the lines of batch whose ID, email or identity an earlier line of the dry run
// would have written, setting their result and the earlier line in earlier; it returns the other
// lines, which the database classifies.
func (s *scratch) classify(ctx context.Context, batch []fluxauth.ImportedUser, res []fluxauth.ImportResult, earlier []int, opt fluxauth.ImportOptions) ([]int, error) {
	ids := make([]any, len(batch))
	var keys []any
	for i := range batch {
		ids[i] = batch[i].User.ID
		k := importKeys(&batch[i])
		for _, key := range k[1:] {
			keys = append(keys, key)
		}
	}
	type prior struct {
		line int
		data []byte
	}
	had := map[string]prior{}
	if err := s.query(ctx, `SELECT id, line, data FROM ids WHERE id IN (`+marks(len(ids))+`)`, ids, func(r *sql.Rows) error {
		var id string
		var p prior
		if err := r.Scan(&id, &p.line, &p.data); err != nil {
			return err
		}
		had[id] = p
		return nil
	}); err != nil {
		return nil, err
	}
	type owner struct {
		id   string
		line int
	}
	owners := map[string]owner{}
	if err := s.query(ctx, `SELECT key, id, line FROM owners WHERE key IN (`+marks(len(keys))+`)`, keys, func(r *sql.Rows) error {
		var key string
		var o owner
		if err := r.Scan(&key, &o.id, &o.line); err != nil {
			return err
		}
		owners[key] = o
		return nil
	}); err != nil {
		return nil, err
	}
	var send []int
	for i := range batch {
		in := &batch[i]
		decided := false
		if p, ok := had[in.User.ID]; ok {
			var before fluxauth.ImportedUser
			if err := json.Unmarshal(p.data, &before); err != nil {
				return nil, err
			}
			held := make([]*fluxauth.Identity, len(before.Identities))
			for k := range before.Identities {
				held[k] = &before.Identities[k]
			}
			earlier[i] = p.line
			res[i].Fields = in.Differences(&before.User, held)
			switch {
			case len(res[i].Fields) == 0:
				res[i].Outcome, decided = fluxauth.ImportUnchanged, true
			case !opt.Update:
				res[i].Outcome, decided = fluxauth.ImportDiffers, true
			default:
				res[i].Outcome = fluxauth.ImportUpdated
			}
		}
		k := importKeys(in)
		for n, key := range k[1:] {
			if decided {
				break
			}
			if o, ok := owners[key]; ok && o.id != in.User.ID {
				earlier[i], decided = o.line, true
				if n == 0 {
					res[i] = fluxauth.ImportResult{Outcome: fluxauth.ImportEmailTaken, OtherUserID: o.id}
				} else {
					res[i] = fluxauth.ImportResult{Outcome: fluxauth.ImportIdentityTaken, OtherUserID: o.id, Provider: in.Identities[n-1].Provider}
				}
			}
		}
		if !decided && res[i].Outcome == 0 {
			send = append(send, i)
		}
	}
	return send, nil
}

// record remembers the lines of batch that would have been written.
func (s *scratch) record(ctx context.Context, batch []fluxauth.ImportedUser, lines []int, res []fluxauth.ImportResult) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for i, r := range res {
		if !r.Outcome.Applied() {
			continue
		}
		data, err := json.Marshal(&batch[i])
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO ids (id, line, data) VALUES (?, ?, ?)`, batch[i].User.ID, lines[i], data); err != nil {
			return err
		}
		for _, key := range importKeys(&batch[i])[1:] {
			if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO owners (key, id, line) VALUES (?, ?, ?)`, key, batch[i].User.ID, lines[i]); err != nil {
				return err
			}
		}
	}
	return tx.Commit()
}

func (s *scratch) query(ctx context.Context, q string, args []any, fn func(*sql.Rows) error) error {
	if len(args) == 0 {
		return nil
	}
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// marks is n comma-separated "?".
func marks(n int) string { return strings.TrimSuffix(strings.Repeat("?, ", n), ", ") }
