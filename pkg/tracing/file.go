package tracing

import (
	"context"
	"encoding/json"
	"io"
	"sync"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
)

// FileSpan is one line of a span file: the span with its trace, its parent
// and its links, flat enough for grep and jq (and for the end-to-end tests
// that rebuild a command's tree from the files of every service).
//
// OpenTelemetry's stdouttrace exporter writes much the same; this one
// keeps the workspace's modules free of one more dependency and its lines
// shorter.
type FileSpan struct {
	Service      string         `json:"service"`
	TraceID      string         `json:"trace_id"`
	SpanID       string         `json:"span_id"`
	ParentSpanID string         `json:"parent_span_id,omitempty"`
	Name         string         `json:"name"`
	Kind         string         `json:"kind"`
	Start        time.Time      `json:"start"`
	End          time.Time      `json:"end"`
	Status       string         `json:"status,omitempty"`
	Attributes   map[string]any `json:"attributes,omitempty"`
	Links        []FileLink     `json:"links,omitempty"`
}

// FileLink is a link of a FileSpan.
type FileLink struct {
	TraceID string `json:"trace_id"`
	SpanID  string `json:"span_id"`
}

// fileExporter writes each span as one JSON line.
type fileExporter struct {
	mu sync.Mutex
	w  io.Writer
}

func (e *fileExporter) ExportSpans(_ context.Context, spans []sdktrace.ReadOnlySpan) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	enc := json.NewEncoder(e.w)
	for _, s := range spans {
		fs := FileSpan{
			TraceID: s.SpanContext().TraceID().String(), SpanID: s.SpanContext().SpanID().String(),
			Name: s.Name(), Kind: s.SpanKind().String(), Start: s.StartTime(), End: s.EndTime(),
		}
		if s.Parent().IsValid() {
			fs.ParentSpanID = s.Parent().SpanID().String()
		}
		if s.Status().Code != 0 {
			fs.Status = s.Status().Code.String() + ": " + s.Status().Description
		}
		if v, ok := s.Resource().Set().Value(semconv.ServiceNameKey); ok {
			fs.Service = v.AsString()
		}
		if attrs := s.Attributes(); len(attrs) > 0 {
			fs.Attributes = make(map[string]any, len(attrs))
			for _, kv := range attrs {
				fs.Attributes[string(kv.Key)] = kv.Value.AsInterface()
			}
		}
		for _, l := range s.Links() {
			fs.Links = append(fs.Links, FileLink{TraceID: l.SpanContext.TraceID().String(), SpanID: l.SpanContext.SpanID().String()})
		}
		if err := enc.Encode(fs); err != nil {
			return err
		}
	}
	return nil
}

func (e *fileExporter) Shutdown(context.Context) error { return nil }
