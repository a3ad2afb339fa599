package cordonvet_test

import (
	"testing"

	"golang.org/x/tools/go/analysis/analysistest"

	"github.com/cordon-sec/cordon/cordonvet"
)

func TestFrameworks(t *testing.T) {
	testdata := analysistest.TestData()
	analysistest.Run(t, testdata, cordonvet.Analyzer,
		"nethttp", "ginapp", "echo4app", "echo5app", "fastapp", "sessionapp", "ignoreapp")
}
