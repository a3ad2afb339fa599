package ignoreapp

import "net/http"

var last *http.Request

func use(r *http.Request) {}

func ignored(w http.ResponseWriter, r *http.Request) {
	//cordonvet:ignore the debug page shows the last request; guarded and test-only
	last = r
	go use(r) //cordonvet:ignore use only reads r.Method, checked by TestUse
}

func noReason(w http.ResponseWriter, r *http.Request) {
	//cordonvet:ignore // want `cordonvet:ignore needs a reason`
	last = r // want `stored in package variable last`
}

func otherDirective(w http.ResponseWriter, r *http.Request) {
	//cordonvet:ignorex something
	last = r // want `stored in package variable last`
}

func trailingCoversOnlyItsLine(w http.ResponseWriter, r *http.Request) {
	go use(r) //cordonvet:ignore use only reads r.Method, checked by TestUse
	last = r  // want `stored in package variable last`
}

func standaloneCoversOnlyNextLine(w http.ResponseWriter, r *http.Request) {
	//cordonvet:ignore the next line only
	go use(r)
	last = r // want `stored in package variable last`
}
