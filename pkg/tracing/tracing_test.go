package tracing_test

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/orderstream/orderstream/pkg/tracing"
)

func TestConfigValidate(t *testing.T) {
	require.NoError(t, tracing.DefaultConfig().Validate())
	c := tracing.DefaultConfig()
	c.Exporter = "file"
	require.ErrorContains(t, c.Validate(), `"file"`)
	c.Exporter, c.SampleRatio = "zipkin", 2
	err := c.Validate()
	require.ErrorContains(t, err, `"exporter"`)
	require.ErrorContains(t, err, `"sample_ratio"`)
}

// The file exporter appends one JSON span per line to the service's file
// as each span ends.
func TestFileExporterWritesEachSpanAsItEnds(t *testing.T) {
	dir := t.TempDir()
	cfg := tracing.DefaultConfig()
	cfg.Exporter, cfg.File = tracing.ExporterFile, filepath.Join(dir, "{service}.spans.jsonl")
	tp, shutdown, err := tracing.New(context.Background(), cfg, "cdc-relay", "test")
	require.NoError(t, err)
	_, span := tp.Tracer("t").Start(context.Background(), "send orderstream.orders.v1")
	span.End()

	f, err := os.Open(filepath.Join(dir, "cdc-relay.spans.jsonl"))
	require.NoError(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	require.True(t, sc.Scan(), "the span is written before shutdown")
	var got tracing.FileSpan
	require.NoError(t, json.Unmarshal(sc.Bytes(), &got))
	require.Equal(t, "send orderstream.orders.v1", got.Name)
	require.Equal(t, "cdc-relay", got.Service)
	require.Equal(t, "internal", got.Kind)
	require.Equal(t, span.SpanContext().TraceID().String(), got.TraceID)
	require.Equal(t, span.SpanContext().SpanID().String(), got.SpanID)
	require.Empty(t, got.ParentSpanID)
	require.NoError(t, shutdown(context.Background()))
}
