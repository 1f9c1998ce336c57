// Package pkg is the shared module of orderstream: platform pieces every
// service's main composes (config, logging, metrics, tracing, supervision,
// the admin server) and the CQL and Kafka layers.
package pkg
