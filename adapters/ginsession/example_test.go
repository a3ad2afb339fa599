package ginsession_test

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/cordon-sec/cordon/adapters/ginsession"
	"github.com/cordon-sec/cordon/session"
	"github.com/cordon-sec/cordon/store/memstore"
)

// A gin app with cordon's session: log in (with "remember me"), read the
// user back, and refuse a cross-origin login. The CSRF protection is the
// standard library's, around the whole engine.
func Example() {
	gin.SetMode(gin.ReleaseMode)
	m := session.New(memstore.New(memstore.Options{}), session.Options{})
	defer m.Close()

	r := gin.New()
	r.Use(ginsession.Middleware(m))
	r.POST("/login", func(c *gin.Context) {
		// Check the password first; then:
		opt := session.LoginOptions{Remember: c.PostForm("remember") == "on"}
		if err := ginsession.From(c).LoginWith(c.PostForm("user"), opt); err != nil {
			c.String(http.StatusServiceUnavailable, "could not log in")
			return
		}
		c.String(http.StatusOK, "logged in")
	})
	r.GET("/me", func(c *gin.Context) {
		user, err := ginsession.From(c).Principal()
		if err != nil {
			c.String(http.StatusServiceUnavailable, "session unavailable")
			return
		}
		c.String(http.StatusOK, "user=%q", user)
	})
	h := http.NewCrossOriginProtection().Handler(r)
	srv := httptest.NewTLSServer(h) // a real program: http.ListenAndServeTLS(addr, cert, key, h)
	defer srv.Close()

	browser := *srv.Client()
	browser.Jar, _ = cookiejar.New(nil)
	fmt.Println(call(&browser, "POST", srv.URL+"/login", "user=alice&remember=on", ""))
	fmt.Println(call(&browser, "GET", srv.URL+"/me", "", ""))
	fmt.Println(call(srv.Client(), "POST", srv.URL+"/login", "user=mallory", "cross-site"))
	// Output:
	// 200 logged in
	// 200 user="alice"
	// 403 Forbidden
}

func call(c *http.Client, method, u, form, fetchSite string) string {
	req, err := http.NewRequest(method, u, strings.NewReader(form))
	if err != nil {
		log.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if fetchSite != "" {
		req.Header.Set("Sec-Fetch-Site", fetchSite) // as a browser sends it
	}
	resp, err := c.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return resp.Status
	}
	b, _ := io.ReadAll(resp.Body)
	return fmt.Sprint(resp.StatusCode, " ", strings.TrimSpace(string(b)))
}
