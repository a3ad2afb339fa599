// Package gclplugin registers cordonvet as a golangci-lint module plugin.
//
// It imports github.com/golangci/plugin-module-register, the small module
// golangci-lint's module plugin system loads plugins through; nothing else of
// cordonvet depends on it. docs/cordonvet.md shows the .custom-gcl.yml and
// .golangci.yml that build and enable it.
package gclplugin

import (
	"fmt"
	"strings"

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

// New returns the plugin. Its settings are the analyzer's flags:
//
//	settings:
//	  scoped: [github.com/gorilla/sessions.Session, example.com/app.Visit]
//	  strict-withoutcancel: false
//
// Any other setting is rejected, so a typo is not silently ignored.
func New(settings any) (register.LinterPlugin, error) {
	if settings == nil {
		return &Plugin{}, nil
	}
	m, ok := settings.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("gclplugin: cordonvet settings must be a map, got %T", settings)
	}
	for k, v := range m {
		var val string
		switch k {
		case "scoped":
			switch x := v.(type) {
			case string:
				val = x
			case []any:
				var names []string
				for _, e := range x {
					s, ok := e.(string)
					if !ok {
						return nil, fmt.Errorf("gclplugin: cordonvet setting scoped: want type names, got %v", e)
					}
					names = append(names, s)
				}
				val = strings.Join(names, ",")
			default:
				return nil, fmt.Errorf("gclplugin: cordonvet setting scoped: want a list of type names, got %T", v)
			}
		case "strict-withoutcancel":
			b, ok := v.(bool)
			if !ok {
				return nil, fmt.Errorf("gclplugin: cordonvet setting strict-withoutcancel: want true or false, got %v", v)
			}
			val = fmt.Sprint(b)
		default:
			return nil, fmt.Errorf("gclplugin: cordonvet has no setting %q (it takes scoped and strict-withoutcancel)", k)
		}
		if err := cordonvet.Analyzer.Flags.Set(k, val); err != nil {
			return nil, fmt.Errorf("gclplugin: cordonvet setting %s: %v", k, err)
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
