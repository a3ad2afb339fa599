package gclplugin

import (
	"testing"

	"github.com/golangci/plugin-module-register/register"

	"github.com/cordon-sec/cordon/cordonvet"
)

func TestRegistered(t *testing.T) {
	newPlugin, err := register.GetPlugin("cordonvet")
	if err != nil {
		t.Fatalf("cordonvet is not registered: %v", err)
	}
	for _, settings := range []any{nil, map[string]any{}} {
		p, err := newPlugin(settings)
		if err != nil {
			t.Fatalf("New(%v): %v", settings, err)
		}
		as, err := p.BuildAnalyzers()
		if err != nil || len(as) != 1 || as[0] != cordonvet.Analyzer {
			t.Fatalf("BuildAnalyzers = %v, %v; want [cordonvet.Analyzer]", as, err)
		}
		if p.GetLoadMode() != register.LoadModeTypesInfo {
			t.Errorf("GetLoadMode = %q, want %q", p.GetLoadMode(), register.LoadModeTypesInfo)
		}
	}
	if _, err := newPlugin(map[string]any{"typo": true}); err == nil {
		t.Error("New accepted an unknown setting")
	}
	if _, err := newPlugin(map[string]any{"strict-withoutcancel": "yes"}); err == nil {
		t.Error("New accepted a string for strict-withoutcancel")
	}
	defer cordonvet.Analyzer.Flags.Set("scoped", "")
	if _, err := newPlugin(map[string]any{"scoped": []any{"example.com/a.T", "example.com/b.U"}}); err != nil {
		t.Fatalf("New(scoped): %v", err)
	}
	if got := cordonvet.Analyzer.Flags.Lookup("scoped").Value.String(); got != "example.com/a.T,example.com/b.U" {
		t.Errorf("scoped setting gave the flag %q", got)
	}
}
