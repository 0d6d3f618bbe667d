package lineage

import (
	"strings"
	"testing"
	"time"
)

// TestLimits: past each limit a definition is a Problem, unparsed; just under the token limit, the
// deepest expression the parser then builds (a chain of operators) is analysed in bounded time.
func TestLimits(t *testing.T) {
	cat := NewCatalog(MySQL, shopRelations("shop"))
	for _, d := range []Dialect{MySQL, SQLite} {
		big := "select " + strings.Repeat(" ", MaxDefinitionBytes) + "1"
		checkLineage(t, Analyze(d, "shop", "v", big, cat), "problem: the definition is larger than")
		deep := "select " + strings.Repeat("(", MaxNesting+1) + "1" + strings.Repeat(")", MaxNesting+1)
		checkLineage(t, Analyze(d, "shop", "v", deep, cat), "problem: the definition nests parentheses deeper than")
		many := "select " + strings.Repeat("1+", MaxTokens/2+1) + "1"
		checkLineage(t, Analyze(d, "shop", "v", many, cat), "problem: the definition has more than")
		checkLineage(t, Analyze(d, "shop", "v", "select @x", cat), "problem: the definition ")
	}
	chain := "select " + strings.Repeat("total+", MaxTokens/2-10) + "total as t from orders"
	start := time.Now()
	got := Analyze(MySQL, "shop", "v", chain, cat)
	checkLineage(t, got, lines("upstream: shop.orders", "t: expression shop.orders.total"))
	t.Logf("a chain of %d operators: %v", MaxTokens/2-10, time.Since(start))
}
