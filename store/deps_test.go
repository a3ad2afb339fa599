package store_test

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Dependencies point inward: a backend never imports a consumer of stores
// (the cache, the session manager). The contract they share, including the
// revocation notifications, lives in package store.
func TestBackendsDoNotImportConsumers(t *testing.T) {
	consumers := []string{"github.com/cordon-sec/cordon/store/cache", "github.com/cordon-sec/cordon/session"}
	for _, backend := range []string{"memstore", "sqlitestore", "pgstore", "redisstore"} {
		files, err := filepath.Glob(filepath.Join(backend, "*.go"))
		if err != nil || len(files) == 0 {
			t.Fatalf("%s: no Go files (%v)", backend, err)
		}
		for _, name := range files {
			if strings.HasSuffix(name, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			for _, imp := range f.Imports {
				path, _ := strconv.Unquote(imp.Path.Value)
				for _, c := range consumers {
					if path == c || strings.HasPrefix(path, c+"/") {
						t.Errorf("%s imports %s, a consumer of stores", name, path)
					}
				}
			}
		}
	}
}
