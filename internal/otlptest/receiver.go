// Package otlptest is an OpenTelemetry collector's trace receiver for tests: the OTLP
// TraceService over gRPC and OTLP/HTTP (protobuf) on loopback, keeping every span it receives
// with its resource. Only tests import it.
package otlptest

import (
	"context"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Span is one received span with the resource it came with.
type Span struct {
	*tracepb.Span
	Resource *resourcepb.Resource
}

// TraceID is the span's trace id in hex.
func (s Span) TraceID() string { return hex.EncodeToString(s.GetTraceId()) }

// SpanID is the span's id in hex.
func (s Span) SpanID() string { return hex.EncodeToString(s.GetSpanId()) }

// ParentID is the span's parent's id in hex ("" for a root).
func (s Span) ParentID() string { return hex.EncodeToString(s.GetParentSpanId()) }

// Receiver receives spans over OTLP/gRPC and OTLP/HTTP.
type Receiver struct {
	coltracepb.UnimplementedTraceServiceServer
	// GRPCEndpoint and HTTPEndpoint are URLs for OTEL_EXPORTER_OTLP_ENDPOINT, http:// (no TLS),
	// of a receiver made by Start.
	GRPCEndpoint, HTTPEndpoint string

	mu    sync.Mutex
	spans []Span
	raw   []*coltracepb.ExportTraceServiceRequest
	conns int
}

// Start starts a receiver on two free loopback ports, stopped when the test ends.
func Start(t testing.TB) *Receiver {
	t.Helper()
	r := &Receiver{}
	r.GRPCEndpoint = "http://" + r.serveGRPC(t, listen(t, "127.0.0.1:0")).String()
	r.HTTPEndpoint = "http://" + r.serveHTTP(t, listen(t, "127.0.0.1:0")).String()
	return r
}

// StartOn starts a receiver serving OTLP/gRPC on every listener of grpcLs and OTLP/HTTP on every
// one of httpLs (the test's own, on fixed addresses), stopped when the test ends.
func StartOn(t testing.TB, grpcLs, httpLs []net.Listener) *Receiver {
	t.Helper()
	r := &Receiver{}
	for _, l := range grpcLs {
		r.serveGRPC(t, l)
	}
	for _, l := range httpLs {
		r.serveHTTP(t, l)
	}
	return r
}

// Connections returns how many connections the receiver accepted, on any of its listeners.
func (r *Receiver) Connections() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.conns
}

func listen(t testing.TB, addr string) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func (r *Receiver) serveGRPC(t testing.TB, l net.Listener) net.Addr {
	gs := grpc.NewServer()
	coltracepb.RegisterTraceServiceServer(gs, r)
	go func() { _ = gs.Serve(&countingListener{Listener: l, r: r}) }()
	t.Cleanup(gs.Stop)
	return l.Addr()
}

func (r *Receiver) serveHTTP(t testing.TB, l net.Listener) net.Addr {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/traces", r.handleHTTP)
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(&countingListener{Listener: l, r: r}) }()
	t.Cleanup(func() { _ = hs.Close() })
	return l.Addr()
}

// countingListener counts the connections it accepts.
type countingListener struct {
	net.Listener
	r *Receiver
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.r.mu.Lock()
		l.r.conns++
		l.r.mu.Unlock()
	}
	return c, err
}

// Export implements the OTLP TraceService.
func (r *Receiver) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	r.add(req)
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

func (r *Receiver) handleHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(io.LimitReader(req.Body, 64<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var msg coltracepb.ExportTraceServiceRequest
	if req.Header.Get("Content-Type") != "application/x-protobuf" || proto.Unmarshal(body, &msg) != nil {
		http.Error(w, "want an OTLP protobuf body", http.StatusBadRequest)
		return
	}
	r.add(&msg)
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

func (r *Receiver) add(req *coltracepb.ExportTraceServiceRequest) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.raw = append(r.raw, req)
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				r.spans = append(r.spans, Span{Span: s, Resource: rs.GetResource()})
			}
		}
	}
}

// Spans returns the spans received so far.
func (r *Receiver) Spans() []Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Span(nil), r.spans...)
}

// Requests returns how many export requests arrived.
func (r *Receiver) Requests() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.raw)
}

// Attr returns the string form of the span's attribute key ("" when absent).
func (s Span) Attr(key string) string {
	for _, kv := range s.GetAttributes() {
		if kv.GetKey() == key {
			return render(kv.GetValue())
		}
	}
	return ""
}

// Haystack renders every span received, with its resource, for a leak search: the JSON form
// of each export request, plus the raw bytes of every bytes-valued attribute (JSON shows them
// base64-encoded, where a search would miss them).
func (r *Receiver) Haystack(t testing.TB) string {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	for _, req := range r.raw {
		js, err := protojson.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(js)
		b.WriteByte('\n')
		walkBytes(req.ProtoReflect(), func(p []byte) {
			b.Write(p)
			b.WriteByte('\n')
		})
	}
	return b.String()
}

// walkBytes calls fn for the bytes_value of every AnyValue reachable from m.
func walkBytes(m protoreflect.Message, fn func([]byte)) {
	if v, ok := m.Interface().(*commonpb.AnyValue); ok {
		if bv, ok := v.GetValue().(*commonpb.AnyValue_BytesValue); ok {
			fn(bv.BytesValue)
		}
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList() && fd.Kind() == protoreflect.MessageKind:
			for i := 0; i < v.List().Len(); i++ {
				walkBytes(v.List().Get(i).Message(), fn)
			}
		case fd.IsMap():
		case fd.Kind() == protoreflect.MessageKind:
			walkBytes(v.Message(), fn)
		}
		return true
	})
}

// render is an attribute value as text: strings, numbers and booleans as Go prints them,
// other values in their JSON form.
func render(v *commonpb.AnyValue) string {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_IntValue:
		return strconv.FormatInt(x.IntValue, 10)
	case *commonpb.AnyValue_BoolValue:
		return strconv.FormatBool(x.BoolValue)
	case *commonpb.AnyValue_DoubleValue:
		return strconv.FormatFloat(x.DoubleValue, 'g', -1, 64)
	}
	js, _ := protojson.Marshal(v)
	return string(js)
}
