package session_test

import (
	"context"
	"testing"

	"github.com/cordon-sec/cordon/chaos"
	"github.com/cordon-sec/cordon/session"
	"github.com/cordon-sec/cordon/store/memstore"
)

func runChaos(t *testing.T, adjust func(*session.Manager)) chaos.Result {
	t.Helper()
	return runChaosConfig(t, chaos.Config{Adjust: adjust})
}

func runChaosConfig(t *testing.T, cfg chaos.Config) chaos.Result {
	t.Helper()
	cfg.Clients, cfg.Requests, cfg.Seed = 64, 64*40, 7
	res, err := chaos.Run(context.Background(), memstore.New(memstore.Options{}), session.Options{}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", res)
	return res
}

// TestChaos is invariant 2 and 3 under load: 64 signed-in clients, hostile
// code holding handles of ended requests and a buggy app that writes other
// requests' cookies into its responses. No client may ever see another
// user, and the hostile part must really have run.
func TestChaos(t *testing.T) {
	res := runChaos(t, nil)
	if res.Crossings != 0 {
		t.Fatalf("%d crossings; first: %s", res.Crossings, res.FirstCrossing)
	}
	if res.StaleActed != 0 {
		t.Errorf("%d uses of sealed handles were not refused", res.StaleActed)
	}
	if res.StaleRefused == 0 || res.Injected == 0 || res.GuardBlocks == 0 || res.StaleWritesRefused == 0 || res.Tossed == 0 || res.Ambiguous == 0 {
		t.Errorf("the hostile code did not run: %+v", res)
	}
	if res.StaleWritesActed != 0 {
		t.Errorf("%d writes through kept response writers were not refused", res.StaleWritesActed)
	}
	for _, shape := range chaos.Shapes {
		if res.InjectedByShape[shape] == 0 {
			t.Errorf("no cookie was injected as %q", shape)
		}
	}
	if res.Requests < 64*40 {
		t.Errorf("only %d requests answered", res.Requests)
	}
}

// The oracle must be able to fail: with the guard off the injected cookies
// reach the wrong clients.
func TestChaosOracleCatchesMissingGuard(t *testing.T) {
	res := runChaosConfig(t, chaos.Config{Adjust: session.DisableGuard, NoKeptWriters: true})
	if res.Crossings == 0 {
		t.Fatalf("guard off and no crossing seen: %+v", res)
	}
}

// With sealing off, in a server that recycles request states as gin, echo
// and fasthttp recycle their contexts, kept handles act on later requests.
func TestChaosOracleCatchesMissingSeal(t *testing.T) {
	res := runChaos(t, func(m *session.Manager) {
		session.DisableSeal(m)
		session.RecycleStates(m)
	})
	if res.Crossings == 0 {
		t.Fatalf("sealing off and no crossing seen: %+v", res)
	}
}

// Each of the guard's checks alone: with it off, the shapes it stops reach
// the clients and the oracle sees them.
func TestChaosOracleCatchesEachMissingCheck(t *testing.T) {
	for _, check := range []string{"canonical", "trailers", "smuggled", "unwrap", "ambiguous"} {
		t.Run(check, func(t *testing.T) {
			res := runChaosConfig(t, chaos.Config{
				Adjust:        func(m *session.Manager) { session.DisableProtection(m, check) },
				NoKeptWriters: check == "unwrap", // the raw writer a handler kept is net/http's own
			})
			if res.Crossings == 0 {
				t.Fatalf("%s off and no crossing seen: %+v", check, res)
			}
		})
	}
}
