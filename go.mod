module github.com/cordon-sec/cordon

go 1.26
