module github.com/orderstream/orderstream/schema

go 1.26.0
