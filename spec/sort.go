package spec

import (
	"cmp"
	"slices"
)

func sortedKeys[K cmp.Ordered, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// nilIfEmpty makes an empty slice or map nil, so unset and empty compare and hash alike.
func nilIfEmpty[T ~[]string | ~map[string]string](v T) T {
	if len(v) == 0 {
		return nil
	}
	return v
}
