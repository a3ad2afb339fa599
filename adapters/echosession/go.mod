module github.com/cordon-sec/cordon/adapters/echosession

go 1.26

require github.com/cordon-sec/cordon v0.2.0

require github.com/labstack/echo/v5 v5.4.4
