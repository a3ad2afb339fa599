module github.com/cordon-sec/cordon/report/sentryreport

go 1.26

require (
	github.com/cordon-sec/cordon v0.2.0
	github.com/getsentry/sentry-go v0.50.0
)

require (
	golang.org/x/sys v0.47.0 // indirect
	golang.org/x/text v0.41.0 // indirect
)
