package odoolog

// Classes of the records that match no entry of the catalog.
const (
	// ClassNone is the class of a record without a traceback.
	ClassNone = "none"
	// ClassOther is the class of every exception type beyond the bound.
	ClassOther = "other"
)

// ClassBound names the class of an unknown error, its exception type,
// within a bounded set: the first Max types seen keep their name, later
// ones are ClassOther, so that a label made of it stays bounded whatever
// the log holds. It is not safe for concurrent use.
type ClassBound struct {
	max  int
	seen map[string]string
}

// NewClassBound returns a bound of max classes (besides ClassNone and
// ClassOther).
func NewClassBound(max int) *ClassBound {
	return &ClassBound{max: max, seen: map[string]string{}}
}

// Class returns the class of an exception type (empty: ClassNone).
func (b *ClassBound) Class(exception []byte) string {
	if len(exception) == 0 {
		return ClassNone
	}
	if c, ok := b.seen[string(exception)]; ok {
		return c
	}
	if len(b.seen) >= b.max {
		return ClassOther
	}
	c := string(exception)
	b.seen[c] = c
	return c
}
