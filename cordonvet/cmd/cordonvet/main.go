// Command cordonvet reports request-scoped values that escape their request
// (see package github.com/cordon-sec/cordon/cordonvet).
//
// Run it directly over packages:
//
//	cordonvet ./...
//
// or as go vet's tool:
//
//	go vet -vettool=$(which cordonvet) ./...
package main

import (
	"golang.org/x/tools/go/analysis/singlechecker"

	"github.com/cordon-sec/cordon/cordonvet"
)

func main() { singlechecker.Main(cordonvet.Analyzer) }
