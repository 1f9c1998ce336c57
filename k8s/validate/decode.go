package validate

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer/json"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/yaml"
)

// Object is one decoded manifest.
type Object struct {
	// Source names where the document came from, for messages.
	Source string
	// Doc is the document as rendered.
	Doc []byte
	// Obj is the typed object; its metadata is Meta.
	Obj  runtime.Object
	Meta metav1.Object
	GVK  schema.GroupVersionKind
}

// Kind is the object's kind.
func (o Object) Kind() string { return o.GVK.Kind }

// String names the object as "Kind namespace/name".
func (o Object) String() string {
	return fmt.Sprintf("%s %s/%s", o.GVK.Kind, o.Meta.GetNamespace(), o.Meta.GetName())
}

// Decoder decodes manifests strictly into the API types it knows.
type Decoder struct {
	scheme *runtime.Scheme
	codec  runtime.Decoder
}

// NewDecoder knows the Kubernetes groups the charts render, the Prometheus
// Operator's monitoring.coreos.com/v1 and the Gateway API's v1.
func NewDecoder() (*Decoder, error) {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme, appsv1.AddToScheme, batchv1.AddToScheme,
		policyv1.AddToScheme, autoscalingv2.AddToScheme, networkingv1.AddToScheme,
		rbacv1.AddToScheme, monitoringv1.AddToScheme, gatewayv1.Install, discoveryv1.AddToScheme,
	} {
		if err := add(s); err != nil {
			return nil, fmt.Errorf("building the scheme: %w", err)
		}
	}
	codec := json.NewSerializerWithOptions(json.DefaultMetaFactory, s, s,
		json.SerializerOptions{Yaml: true, Strict: true})
	return &Decoder{scheme: s, codec: codec}, nil
}

// Decode decodes one document into its typed object. Unknown and
// duplicated fields, a missing apiVersion or kind and kinds the scheme does
// not know are errors.
func (d *Decoder) Decode(source string, doc []byte) (Object, error) {
	obj, gvk, err := d.codec.Decode(doc, nil, nil)
	if err != nil {
		return Object{}, fmt.Errorf("%s: %w", source, err)
	}
	meta, ok := obj.(metav1.Object)
	if !ok {
		return Object{}, fmt.Errorf("%s: %s has no object metadata", source, gvk)
	}
	return Object{Source: source, Doc: doc, Obj: obj, Meta: meta, GVK: *gvk}, nil
}

// DecodeAll decodes every document of a YAML stream.
func (d *Decoder) DecodeAll(source string, stream []byte) ([]Object, error) {
	docs, err := SplitYAML(stream)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	var objs []Object
	var errs []error
	for i, doc := range docs {
		o, err := d.Decode(fmt.Sprintf("%s#%d", source, i), doc)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		objs = append(objs, o)
	}
	return objs, errors.Join(errs...)
}

// SplitYAML splits a YAML stream into its documents, leaving out those that
// hold nothing but comments.
func SplitYAML(stream []byte) ([][]byte, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(stream)))
	var docs [][]byte
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("splitting documents: %w", err)
		}
		var v any
		if err := yaml.Unmarshal(doc, &v); err != nil {
			return nil, fmt.Errorf("document %d: %w", len(docs), err)
		}
		if v != nil {
			docs = append(docs, doc)
		}
	}
}
