package mysql

import (
	"context"
	"database/sql"
	"slices"
	"strconv"
	"strings"

	"github.com/secure-agent/secure-agent/connectors"
)

// MaxSequencesPerQuery bounds the sequences whose parameters one query reads (see
// readSequences): a query of at most about 100 KB, which opens that many tables.
const MaxSequencesPerQuery = 100

// listedSequence is a sequence that tablesQuery listed: its name and comment.
type listedSequence struct {
	key     tableKey
	comment string
}

// sequenceParams are the parameters of one sequence, as the server prints them.
type sequenceParams struct {
	start, increment, min, max, cache, cycle sql.NullString
}

// sequenceState says what reading a sequence's parameters gave.
type sequenceState int

const (
	sequenceRead     sequenceState = iota // the parameters were read
	sequenceWithheld                      // the user may not read the sequence
	sequenceGone                          // the sequence was dropped after it was listed
)

// sequences writes MariaDB's sequences (tables of type SEQUENCE that passed the filters; MySQL
// has none), in the tables' order. MariaDB 10.11 keeps a sequence's parameters only in the
// sequence itself (no information_schema view has them): they are read by one query per
// MaxSequencesPerQuery sequences (see readSequences). DataType is "bigint", MariaDB's only
// sequence type before 11.5; Increment 0 means that the server's auto_increment_increment
// applies. A sequence the user may not read (no SELECT on it) is written with its parameters
// empty.
func (x *chunk) sequences(ctx context.Context) error {
	size := MaxSequencesPerQuery
	if x.s.sequenceBatch > 0 {
		size = x.s.sequenceBatch
	}
	for batch := range slices.Chunk(x.listedSequences, size) {
		params, states, err := x.readSequences(ctx, batch)
		if err != nil {
			return err
		}
		for i, seq := range batch {
			if states[i] == sequenceGone {
				continue
			}
			if err := x.w.Write(x.sequence(seq, params[i])); err != nil {
				return err
			}
		}
	}
	return nil
}

// sequence builds a sequence entity.
func (x *chunk) sequence(seq listedSequence, p sequenceParams) connectors.Sequence {
	return connectors.Sequence{
		Database:  x.s.dbName,
		Schema:    seq.key.schema,
		Name:      seq.key.table,
		DataType:  "bigint",
		Start:     p.start.String,
		Increment: p.increment.String,
		Min:       p.min.String,
		Max:       p.max.String,
		Cache:     p.cache.String,
		Cycle:     p.cycle.String == "1",
		Comment:   seq.comment,
	}
}

// sequenceParamsQuery reads the parameters of seqs, one UNION ALL branch per sequence, each row
// tagged with the sequence's index in seqs. The names are the catalog's own, quoted (an
// identifier cannot be a bound parameter).
func sequenceParamsQuery(seqs []listedSequence) string {
	var b strings.Builder
	for i, seq := range seqs {
		if i > 0 {
			b.WriteString("\nUNION ALL ")
		}
		b.WriteString("SELECT " + strconv.Itoa(i) +
			", `start_value`, `increment`, `minimum_value`, `maximum_value`, `cache_size`, `cycle_option` FROM " +
			quoteIdent(seq.key.schema) + "." + quoteIdent(seq.key.table))
	}
	return b.String()
}

// readSequences reads the parameters of a batch of sequences with one query. When the query
// fails because one of them may not be read or no longer exists, each is read on its own, so
// that one sequence the user lacks SELECT on (Preflight names the privilege) withholds its own
// parameters only: one query per sequence, in that case alone.
func (x *chunk) readSequences(ctx context.Context, batch []listedSequence) ([]sequenceParams, []sequenceState, error) {
	params := make([]sequenceParams, len(batch))
	states := make([]sequenceState, len(batch))
	var readable []listedSequence // the names the server can be asked about
	var at []int                  // their indexes in batch
	for i, seq := range batch {
		if strings.ContainsRune(seq.key.schema, 0) || strings.ContainsRune(seq.key.table, 0) {
			states[i] = sequenceWithheld
			continue
		}
		readable = append(readable, seq)
		at = append(at, i)
	}
	if len(readable) == 0 {
		return params, states, nil
	}
	var (
		index int
		p     sequenceParams
	)
	dest := []any{&index, &p.start, &p.increment, &p.min, &p.max, &p.cache, &p.cycle}
	err := x.s.stream(ctx, sequenceParamsQuery(readable), nil, dest, func() error {
		if index >= 0 && index < len(at) {
			params[at[index]] = p
		}
		return nil
	})
	if err == nil {
		return params, states, nil
	}
	var state sequenceState
	switch mysqlNumber(err) {
	case 1044, 1142, 1143: // denied
		state = sequenceWithheld
	case 1146: // no such table
		state = sequenceGone
	default:
		return nil, nil, err
	}
	if len(readable) == 1 {
		states[at[0]] = state
		return params, states, nil
	}
	for j, seq := range readable {
		one, oneState, err := x.readSequences(ctx, []listedSequence{seq})
		if err != nil {
			return nil, nil, err
		}
		params[at[j]], states[at[j]] = one[0], oneState[0]
	}
	return params, states, nil
}
