package fluxauth

import (
	"context"
	"time"
)

// ImportField is a field an import line may leave out: one it leaves out takes its default on a new
// account and is neither compared nor changed on an existing one. ID and email are always given.
type ImportField uint8

// The fields a line may leave out.
const (
	ImportName ImportField = 1 << iota
	ImportUserType
	ImportPasswordHash
	ImportEmailVerified
	ImportCreatedAt
)

// ImportedUser is one checked line of `fluxauth users import`: the account as the line gives it
// (EmailVerifiedAt set to the import's time when the line says the address was verified) and the
// Google and Apple identities it names.
type ImportedUser struct {
	User       User
	Given      ImportField
	Identities []Identity
}

// Has reports whether the line gave f.
func (in *ImportedUser) Has(f ImportField) bool { return in.Given&f != 0 }

// Differences names the fields in which the existing account u, with its identities ids, is not
// what the line gives: "email", "name", "userType", "passwordHash", "emailVerified", "createdAt",
// and the provider of each identity the line names that the account does not hold. Fields the line
// leaves out are not compared, nor identities of the account the line does not name. Times are
// compared to the microsecond, as the stores keep them.
func (in *ImportedUser) Differences(u *User, ids []*Identity) []string {
	var d []string
	if u.Email != in.User.Email {
		d = append(d, "email")
	}
	if in.Has(ImportName) && u.Name != in.User.Name {
		d = append(d, "name")
	}
	if in.Has(ImportUserType) && u.UserType != in.User.UserType {
		d = append(d, "userType")
	}
	if in.Has(ImportPasswordHash) && u.PasswordHash != in.User.PasswordHash {
		d = append(d, "passwordHash")
	}
	if in.Has(ImportEmailVerified) && u.EmailVerified() != in.User.EmailVerified() {
		d = append(d, "emailVerified")
	}
	if in.Has(ImportCreatedAt) && !u.CreatedAt.Truncate(time.Microsecond).Equal(in.User.CreatedAt.Truncate(time.Microsecond)) {
		d = append(d, "createdAt")
	}
	for _, want := range in.Identities {
		held := false
		for _, id := range ids {
			held = held || id.Provider == want.Provider && id.Subject == want.Subject
		}
		if !held {
			d = append(d, want.Provider)
		}
	}
	return d
}

// ImportOutcome is what an import did, or would do, with a line.
type ImportOutcome uint8

// Outcomes of an import line.
const (
	// ImportCreated: the account did not exist and was created.
	ImportCreated ImportOutcome = iota + 1
	// ImportUnchanged: the account exists as the line gives it.
	ImportUnchanged
	// ImportUpdated: the account existed with other data and was made what the line gives
	// (ImportOptions.Update).
	ImportUpdated
	// ImportDiffers: the account exists with other data (Fields), left as it is.
	ImportDiffers
	// ImportEmailTaken: another account (OtherUserID) has the line's email in its canonical form.
	ImportEmailTaken
	// ImportIdentityTaken: the Provider subject the line names is linked to another account
	// (OtherUserID).
	ImportIdentityTaken
	// ImportRaced: the rows the line needs kept changing under concurrent writers; importing the
	// line again classifies it anew.
	ImportRaced
)

// Applied reports whether the outcome wrote the line (or would have, in a dry run).
func (o ImportOutcome) Applied() bool { return o == ImportCreated || o == ImportUpdated }

// ImportResult is the outcome of one line of a batch.
type ImportResult struct {
	Outcome     ImportOutcome
	Fields      []string // ImportDiffers and ImportUpdated: what differed
	OtherUserID string   // ImportEmailTaken and ImportIdentityTaken: the account that holds it
	Provider    string   // ImportIdentityTaken
	// SessionsRevoked counts the refresh-token sessions an update ended, because it changed the
	// account's password hash or email.
	SessionsRevoked int
}

// ImportOptions steers a batch.
type ImportOptions struct {
	// Update makes accounts that exist with other data what their lines give; without it they are
	// reported (ImportDiffers) and left alone.
	Update bool
	// DryRun classifies the batch exactly as an import would, inside the transaction, and rolls
	// it back: nothing is written.
	DryRun bool
	// Now stamps updates, verifications and revocations.
	Now time.Time
	// By names who runs the import in the events of its updates ("cli:" and the OS user).
	By string
}

// UserImporter writes imported accounts, a batch at a time.
type UserImporter interface {
	// ImportUsers classifies and applies batch in one transaction, returning one result per line
	// in order. The lines of a batch have distinct IDs, canonical emails and identities (the caller
	// cuts a batch where a line repeats one). A line that a concurrent writer overtakes (a signup
	// taking its email between the read and the insert) is classified again against what that
	// writer committed. Every account created gets every identity its line names, or is not
	// created. An updated account whose password hash or email changed has its sessions revoked,
	// each a token_revoked event, and a change of userType is a user_type_changed event.
	ImportUsers(ctx context.Context, batch []ImportedUser, opt ImportOptions) ([]ImportResult, error)
}
