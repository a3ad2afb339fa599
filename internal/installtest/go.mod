module github.com/cordon-sec/cordon/internal/installtest

go 1.26

require golang.org/x/mod v0.39.0
