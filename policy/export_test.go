package policy

// Exported for the external tests.
var (
	PatternProblem    = patternProblem
	EnvPatternProblem = envPatternProblem
	StoreTypes        = storeTypes
)
