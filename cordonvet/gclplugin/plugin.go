// Package gclplugin registers cordonvet as a golangci-lint module plugin.
//
// It imports github.com/golangci/plugin-module-register, the small module
// golangci-lint's module plugin system loads plugins through; nothing else of
// cordonvet depends on it. docs/cordonvet.md shows the .custom-gcl.yml and
// .golangci.yml that build and enable it.
package gclplugin

import (
	"fmt"

	"github.com/golangci/plugin-module-register/register"
	"golang.org/x/tools/go/analysis"

	"github.com/cordon-sec/cordon/cordonvet"
)

func init() {
	register.Plugin("cordonvet", New)
}

// Plugin is cordonvet as a golangci-lint linter.
type Plugin struct{}

var _ register.LinterPlugin = (*Plugin)(nil)

// New returns the plugin. cordonvet takes no settings: any given in
// .golangci.yml are rejected, so a typo is not silently ignored.
func New(settings any) (register.LinterPlugin, error) {
	if settings != nil {
		if m, ok := settings.(map[string]any); !ok || len(m) != 0 {
			return nil, fmt.Errorf("gclplugin: cordonvet takes no settings, got %v", settings)
		}
	}
	return &Plugin{}, nil
}

// BuildAnalyzers returns cordonvet's analyzer.
func (*Plugin) BuildAnalyzers() ([]*analysis.Analyzer, error) {
	return []*analysis.Analyzer{cordonvet.Analyzer}, nil
}

// GetLoadMode says the analyzer needs type information.
func (*Plugin) GetLoadMode() string { return register.LoadModeTypesInfo }
