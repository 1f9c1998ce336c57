package validate

import (
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/yaml"
)

// Check holds one rendering of a chart to the rules every orderstream
// manifest keeps, and returns every breach:
//
//   - names and labels are valid, and no object is rendered twice;
//   - every workload runs as non-root with a read-only root filesystem, no
//     privilege escalation, all capabilities dropped, the RuntimeDefault
//     seccomp profile and no service account token (Pod Security
//     "restricted", and more);
//   - every service Deployment probes /healthz and /readyz on its admin
//     port, and its grace period outlasts preStop and the service's
//     supervise.shutdown_timeout;
//   - every reference resolves: selectors select pods, named ports exist,
//     routes reach Services and ports, HPAs reach Deployments (which then
//     leave replicas to them), ServiceMonitors reach Services, ConfigMaps
//     and the release's own Secrets exist.
//
// release is the release name: Secrets named release-* must be rendered,
// others are the operator's to create.
func Check(objs []Object, release string) []error {
	c := &checker{objs: objs, release: release}
	c.index()
	c.metadata()
	c.workloads()
	c.references()
	return c.errs
}

type workload struct {
	Object
	labels map[string]string
	spec   *corev1.PodSpec
	// service is true for the long-running services (Deployments), which
	// must be probed; the migrator's Job is not.
	service bool
}

type checker struct {
	objs    []Object
	release string
	errs    []error

	pods       []workload
	services   map[string]*corev1.Service              // namespace/name
	slices     map[string][]*discoveryv1.EndpointSlice // by namespace/service name
	configMaps map[string]*corev1.ConfigMap
	secrets    map[string]*corev1.Secret
	accounts   map[string]bool
	gateways   map[string]*gatewayv1.Gateway
	deploys    map[string]*appsv1.Deployment
}

func key(ns, name string) string { return ns + "/" + name }

func (c *checker) errorf(o Object, format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf("%s (%s): %s", o, o.Source, fmt.Sprintf(format, args...)))
}

func (c *checker) index() {
	c.services = map[string]*corev1.Service{}
	c.slices = map[string][]*discoveryv1.EndpointSlice{}
	c.configMaps = map[string]*corev1.ConfigMap{}
	c.secrets = map[string]*corev1.Secret{}
	c.accounts = map[string]bool{}
	c.gateways = map[string]*gatewayv1.Gateway{}
	c.deploys = map[string]*appsv1.Deployment{}
	for _, o := range c.objs {
		k := key(o.Meta.GetNamespace(), o.Meta.GetName())
		switch v := o.Obj.(type) {
		case *corev1.Service:
			c.services[k] = v
		case *discoveryv1.EndpointSlice:
			svc := key(o.Meta.GetNamespace(), v.Labels[discoveryv1.LabelServiceName])
			c.slices[svc] = append(c.slices[svc], v)
		case *corev1.ConfigMap:
			c.configMaps[k] = v
		case *corev1.Secret:
			c.secrets[k] = v
		case *corev1.ServiceAccount:
			c.accounts[k] = true
		case *gatewayv1.Gateway:
			c.gateways[k] = v
		case *appsv1.Deployment:
			c.deploys[k] = v
			c.pods = append(c.pods, workload{o, v.Spec.Template.Labels, &v.Spec.Template.Spec, true})
		case *batchv1.Job:
			c.pods = append(c.pods, workload{o, v.Spec.Template.Labels, &v.Spec.Template.Spec, false})
		}
	}
}

func (c *checker) metadata() {
	seen := map[string]bool{}
	for _, o := range c.objs {
		name := o.Meta.GetName()
		id := o.GVK.GroupKind().String() + " " + key(o.Meta.GetNamespace(), name)
		if seen[id] {
			c.errorf(o, "rendered twice")
		}
		seen[id] = true
		if o.Meta.GetNamespace() == "" && o.Kind() != "Namespace" {
			c.errorf(o, "no namespace")
		}
		check := validation.IsDNS1123Subdomain
		if o.Kind() == "Service" {
			check = validation.IsDNS1035Label
		}
		for _, msg := range check(name) {
			c.errorf(o, "name %q: %s", name, msg)
		}
		c.labels(o, "labels", o.Meta.GetLabels())
		for k := range o.Meta.GetAnnotations() {
			for _, msg := range validation.IsQualifiedName(k) {
				c.errorf(o, "annotation %q: %s", k, msg)
			}
		}
	}
	for _, w := range c.pods {
		c.labels(w.Object, "pod labels", w.labels)
	}
}

func (c *checker) labels(o Object, what string, m map[string]string) {
	for k, v := range m {
		for _, msg := range validation.IsQualifiedName(k) {
			c.errorf(o, "%s: key %q: %s", what, k, msg)
		}
		for _, msg := range validation.IsValidLabelValue(v) {
			c.errorf(o, "%s: %s=%q: %s", what, k, v, msg)
		}
	}
}

func (c *checker) workloads() {
	for _, w := range c.pods {
		s := w.spec
		if s.AutomountServiceAccountToken == nil || *s.AutomountServiceAccountToken {
			c.errorf(w.Object, "automountServiceAccountToken must be false: no service calls the Kubernetes API")
		}
		if s.HostNetwork || s.HostPID || s.HostIPC {
			c.errorf(w.Object, "uses a host namespace")
		}
		psc := s.SecurityContext
		if psc == nil {
			psc = &corev1.PodSecurityContext{}
		}
		if len(s.InitContainers) > 0 {
			c.errorf(w.Object, "init containers are not expected")
		}
		for _, ct := range s.Containers {
			c.container(w, psc, ct)
		}
		if w.service {
			c.probes(w)
			c.grace(w)
		}
	}
}

func isTrue(b *bool) bool  { return b != nil && *b }
func isFalse(b *bool) bool { return b != nil && !*b }

func (c *checker) container(w workload, psc *corev1.PodSecurityContext, ct corev1.Container) {
	sc := ct.SecurityContext
	if sc == nil {
		sc = &corev1.SecurityContext{}
	}
	errf := func(format string, args ...any) {
		c.errorf(w.Object, "container %s: %s", ct.Name, fmt.Sprintf(format, args...))
	}
	runAsNonRoot := sc.RunAsNonRoot
	if runAsNonRoot == nil {
		runAsNonRoot = psc.RunAsNonRoot
	}
	if !isTrue(runAsNonRoot) {
		errf("runAsNonRoot must be true")
	}
	for _, uid := range []*int64{psc.RunAsUser, sc.RunAsUser} {
		if uid != nil && *uid == 0 {
			errf("runs as uid 0")
		}
	}
	if !isTrue(sc.ReadOnlyRootFilesystem) {
		errf("readOnlyRootFilesystem must be true")
	}
	if !isFalse(sc.AllowPrivilegeEscalation) {
		errf("allowPrivilegeEscalation must be false")
	}
	if isTrue(sc.Privileged) {
		errf("privileged")
	}
	if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
		errf("capabilities must drop ALL")
	} else if len(sc.Capabilities.Add) > 0 {
		errf("adds capabilities %v", sc.Capabilities.Add)
	}
	seccomp := sc.SeccompProfile
	if seccomp == nil {
		seccomp = psc.SeccompProfile
	}
	if seccomp == nil || (seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault && seccomp.Type != corev1.SeccompProfileTypeLocalhost) {
		errf("seccompProfile must be RuntimeDefault (or Localhost)")
	}
	ref := ct.Image
	if i := strings.LastIndex(ref, "/"); i >= 0 {
		ref = ref[i+1:]
	}
	if !strings.Contains(ref, ":") && !strings.Contains(ref, "@") {
		errf("image %q has neither tag nor digest", ct.Image)
	}
	if strings.HasSuffix(ct.Image, ":latest") {
		errf("image %q is :latest", ct.Image)
	}
	if ct.Resources.Limits.Memory().IsZero() && ct.Resources.Requests.Memory().IsZero() && len(ct.Resources.Requests) > 0 {
		errf("requests without memory")
	}
}

// probes: liveness on /healthz, readiness on /readyz, both on the admin port.
func (c *checker) probes(w workload) {
	for _, ct := range w.spec.Containers {
		hasAdmin := slices.ContainsFunc(ct.Ports, func(p corev1.ContainerPort) bool { return p.Name == "admin" })
		if !hasAdmin {
			c.errorf(w.Object, "container %s: no port named admin", ct.Name)
		}
		for _, p := range []struct {
			what  string
			probe *corev1.Probe
			path  string
		}{{"livenessProbe", ct.LivenessProbe, "/healthz"}, {"readinessProbe", ct.ReadinessProbe, "/readyz"}} {
			switch {
			case p.probe == nil || p.probe.HTTPGet == nil:
				c.errorf(w.Object, "container %s: no HTTP %s", ct.Name, p.what)
			case p.probe.HTTPGet.Path != p.path || p.probe.HTTPGet.Port != intstr.FromString("admin"):
				c.errorf(w.Object, "container %s: %s must GET %s on port admin, not %s on %s", ct.Name, p.what, p.path, p.probe.HTTPGet.Path, p.probe.HTTPGet.Port.String())
			}
		}
	}
}

// grace: the kubelet kills what still runs after the grace period, so it
// must outlast the preStop sleep plus the service's own shutdown deadline.
func (c *checker) grace(w workload) {
	grace := int64(corev1.DefaultTerminationGracePeriodSeconds)
	if w.spec.TerminationGracePeriodSeconds != nil {
		grace = *w.spec.TerminationGracePeriodSeconds
	}
	shutdown := 20 * time.Second // supervise.DefaultConfig
	if cfg := c.configOf(w); cfg != nil {
		if sup, ok := cfg["supervise"].(map[string]any); ok {
			if s, ok := sup["shutdown_timeout"].(string); ok {
				d, err := time.ParseDuration(s)
				if err != nil {
					c.errorf(w.Object, "supervise.shutdown_timeout %q: %v", s, err)
				}
				shutdown = d
			}
		}
	}
	for _, ct := range w.spec.Containers {
		var sleep time.Duration
		if ct.Lifecycle != nil && ct.Lifecycle.PreStop != nil && ct.Lifecycle.PreStop.Sleep != nil {
			sleep = time.Duration(ct.Lifecycle.PreStop.Sleep.Seconds) * time.Second
		}
		if time.Duration(grace)*time.Second <= sleep+shutdown {
			c.errorf(w.Object, "terminationGracePeriodSeconds %d does not outlast preStop (%s) plus supervise.shutdown_timeout (%s)", grace, sleep, shutdown)
		}
	}
}

// configOf returns the config file of a workload: config.yaml of the
// ConfigMap mounted as the volume named config.
func (c *checker) configOf(w workload) map[string]any {
	for _, v := range w.spec.Volumes {
		if v.Name != "config" || v.ConfigMap == nil {
			continue
		}
		cm := c.configMaps[key(w.Meta.GetNamespace(), v.ConfigMap.Name)]
		if cm == nil {
			return nil
		}
		var cfg map[string]any
		if err := yaml.Unmarshal([]byte(cm.Data["config.yaml"]), &cfg); err != nil {
			c.errorf(w.Object, "config.yaml of ConfigMap %s: %v", cm.Name, err)
		}
		return cfg
	}
	return nil
}

func (c *checker) references() {
	for _, w := range c.pods {
		c.podReferences(w)
	}
	for _, o := range c.objs {
		ns := o.Meta.GetNamespace()
		switch v := o.Obj.(type) {
		case *appsv1.Deployment:
			c.selects(o, v.Spec.Selector, v.Spec.Template.Labels)
		case *corev1.Service:
			c.service(o, v)
		case *discoveryv1.EndpointSlice:
			c.endpointSlice(o, v)
		case *policyv1.PodDisruptionBudget:
			c.selectsPods(o, ns, v.Spec.Selector)
		case *autoscalingv2.HorizontalPodAutoscaler:
			t := v.Spec.ScaleTargetRef
			d := c.deploys[key(ns, t.Name)]
			switch {
			case t.Kind != "Deployment" || d == nil:
				c.errorf(o, "scales %s %s, which is not rendered", t.Kind, t.Name)
			case d.Spec.Replicas != nil:
				c.errorf(o, "Deployment %s sets replicas, which every upgrade would reset under the autoscaler", t.Name)
			}
			if v.Spec.MinReplicas != nil && *v.Spec.MinReplicas > v.Spec.MaxReplicas {
				c.errorf(o, "minReplicas above maxReplicas")
			}
		case *networkingv1.NetworkPolicy:
			c.networkPolicy(o, v)
		case *monitoringv1.ServiceMonitor:
			c.serviceMonitor(o, v)
		case *gatewayv1.HTTPRoute:
			c.httpRoute(o, v)
		case *networkingv1.Ingress:
			c.ingress(o, v)
		}
	}
}

func (c *checker) selects(o Object, sel *metav1.LabelSelector, podLabels map[string]string) {
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil || s.Empty() || !s.Matches(labels.Set(podLabels)) {
		c.errorf(o, "selector %v does not select its own pod template", sel)
	}
}

// selectsPods returns the workloads in ns that sel selects, and complains
// when there is none.
func (c *checker) selectsPods(o Object, ns string, sel *metav1.LabelSelector) []workload {
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		c.errorf(o, "selector: %v", err)
		return nil
	}
	return c.matching(o, ns, s)
}

func (c *checker) matching(o Object, ns string, s labels.Selector) []workload {
	var out []workload
	for _, w := range c.pods {
		if w.Meta.GetNamespace() == ns && !s.Empty() && s.Matches(labels.Set(w.labels)) {
			out = append(out, w)
		}
	}
	if len(out) == 0 {
		c.errorf(o, "selector %s selects no rendered pod", s)
	}
	return out
}

func hasContainerPort(ws []workload, name string, number int32) bool {
	for _, w := range ws {
		for _, ct := range w.spec.Containers {
			for _, p := range ct.Ports {
				if (name != "" && p.Name == name) || (name == "" && p.ContainerPort == number) {
					return true
				}
			}
		}
	}
	return false
}

func (c *checker) service(o Object, svc *corev1.Service) {
	if len(svc.Spec.Selector) == 0 {
		// A Service without a selector is one for endpoints outside the
		// cluster, listed by the EndpointSlices rendered with it.
		if len(c.slices[key(o.Meta.GetNamespace(), svc.Name)]) == 0 {
			c.errorf(o, "no selector and no EndpointSlice")
		}
		return
	}
	ws := c.matching(o, o.Meta.GetNamespace(), labels.SelectorFromSet(svc.Spec.Selector))
	for _, p := range svc.Spec.Ports {
		name, number := p.TargetPort.StrVal, p.TargetPort.IntVal
		if p.TargetPort.Type == intstr.Int && number == 0 {
			number = p.Port
		}
		if len(ws) > 0 && !hasContainerPort(ws, name, number) {
			c.errorf(o, "port %s: target %s is no container port of the selected pods", p.Name, p.TargetPort.String())
		}
	}
}

// endpointSlice: a slice of a Service without a selector (the EndpointSlice
// controller owns the others) names a rendered Service of that kind, and
// the Service's ports by name and number; it lists addresses.
func (c *checker) endpointSlice(o Object, es *discoveryv1.EndpointSlice) {
	name := es.Labels[discoveryv1.LabelServiceName]
	svc := c.services[key(o.Meta.GetNamespace(), name)]
	switch {
	case name == "":
		c.errorf(o, "no label %s", discoveryv1.LabelServiceName)
		return
	case svc == nil:
		c.errorf(o, "Service %s is not rendered", name)
		return
	case len(svc.Spec.Selector) > 0:
		c.errorf(o, "Service %s has a selector: the EndpointSlice controller owns its slices", name)
	}
	ports := map[string]int32{}
	for _, p := range svc.Spec.Ports {
		ports[p.Name] = p.Port
	}
	for _, p := range es.Ports {
		if p.Name == nil || p.Port == nil {
			c.errorf(o, "a port without name or number")
			continue
		}
		if n, ok := ports[*p.Name]; !ok || n != *p.Port {
			c.errorf(o, "port %s %d is no port of Service %s", *p.Name, *p.Port, name)
		}
	}
	if len(es.Endpoints) == 0 {
		c.errorf(o, "no endpoints")
	}
	// What the API server refuses: names, loopback and link-local addresses.
	for _, ep := range es.Endpoints {
		for _, a := range ep.Addresses {
			ip := net.ParseIP(a)
			if ip == nil || ip.IsLoopback() || ip.IsLinkLocalUnicast() || ip.IsUnspecified() {
				c.errorf(o, "address %q: an IP address that is not loopback, link-local or unspecified", a)
			}
		}
	}
}

func (c *checker) podReferences(w workload) {
	ns := w.Meta.GetNamespace()
	if sa := w.spec.ServiceAccountName; sa != "" && sa != "default" && !c.accounts[key(ns, sa)] {
		c.errorf(w.Object, "serviceAccountName %s is not rendered", sa)
	}
	mounted := map[string]bool{}
	for _, v := range w.spec.Volumes {
		switch {
		case v.ConfigMap != nil:
			if c.configMaps[key(ns, v.ConfigMap.Name)] == nil {
				c.errorf(w.Object, "volume %s: ConfigMap %s is not rendered", v.Name, v.ConfigMap.Name)
			}
		case v.Secret != nil:
			c.secretRef(w.Object, ns, v.Secret.SecretName, "", isTrue(v.Secret.Optional))
		}
		mounted[v.Name] = true
	}
	for _, ct := range w.spec.Containers {
		for _, m := range ct.VolumeMounts {
			if !mounted[m.Name] {
				c.errorf(w.Object, "container %s mounts volume %s, which the pod does not have", ct.Name, m.Name)
			}
		}
		for _, e := range ct.Env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				r := e.ValueFrom.SecretKeyRef
				c.secretRef(w.Object, ns, r.Name, r.Key, isTrue(r.Optional))
			}
		}
		for _, e := range ct.EnvFrom {
			if e.SecretRef != nil {
				c.secretRef(w.Object, ns, e.SecretRef.Name, "", isTrue(e.SecretRef.Optional))
			}
		}
	}
}

// secretRef: a Secret named after the release must be rendered (and hold
// key); others are the operator's, made before the install.
func (c *checker) secretRef(o Object, ns, name, k string, optional bool) {
	if optional || !strings.HasPrefix(name, c.release+"-") && name != c.release {
		return
	}
	s := c.secrets[key(ns, name)]
	if s == nil {
		c.errorf(o, "Secret %s is named after the release but not rendered", name)
		return
	}
	if _, ok := s.Data[k]; k != "" && !ok {
		if _, ok := s.StringData[k]; !ok {
			c.errorf(o, "Secret %s has no key %s", name, k)
		}
	}
}

func (c *checker) networkPolicy(o Object, np *networkingv1.NetworkPolicy) {
	ws := c.selectsPods(o, o.Meta.GetNamespace(), &np.Spec.PodSelector)
	if !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) || !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeEgress) {
		c.errorf(o, "policyTypes must hold Ingress and Egress")
	}
	for _, rule := range np.Spec.Ingress {
		for _, p := range rule.Ports {
			if p.Port != nil && p.Port.Type == intstr.String && len(ws) > 0 && !hasContainerPort(ws, p.Port.StrVal, 0) {
				c.errorf(o, "ingress port %s is no container port of the selected pods", p.Port.StrVal)
			}
		}
	}
	dns := false
	for _, rule := range np.Spec.Egress {
		for _, p := range rule.Ports {
			if p.Port != nil && p.Port.IntValue() == 53 {
				dns = true
			}
		}
	}
	if !dns {
		c.errorf(o, "egress does not allow DNS")
	}
}

func (c *checker) serviceMonitor(o Object, sm *monitoringv1.ServiceMonitor) {
	sel, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
	if err != nil || sel.Empty() {
		c.errorf(o, "selector %v: %v", sm.Spec.Selector, err)
		return
	}
	namespaces := sm.Spec.NamespaceSelector.MatchNames
	if len(namespaces) == 0 {
		namespaces = []string{o.Meta.GetNamespace()}
	}
	var matched []*corev1.Service
	for k, svc := range c.services {
		ns, _, _ := strings.Cut(k, "/")
		if slices.Contains(namespaces, ns) && sel.Matches(labels.Set(svc.Labels)) {
			matched = append(matched, svc)
		}
	}
	if len(matched) == 0 {
		c.errorf(o, "selects no rendered Service")
	}
	for _, ep := range sm.Spec.Endpoints {
		for _, svc := range matched {
			if !slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == ep.Port }) {
				c.errorf(o, "Service %s has no port %q", svc.Name, ep.Port)
			}
		}
	}
}

// servicePort: a backend Service of a route exists and has the port.
func (c *checker) servicePort(o Object, ns, name string, number int32, portName string) {
	svc := c.services[key(ns, name)]
	if svc == nil {
		c.errorf(o, "backend Service %s is not rendered", name)
		return
	}
	if !slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool {
		return (portName != "" && p.Name == portName) || (portName == "" && p.Port == number)
	}) {
		c.errorf(o, "backend Service %s has no port %d%s", name, number, portName)
	}
}

func (c *checker) httpRoute(o Object, r *gatewayv1.HTTPRoute) {
	ns := o.Meta.GetNamespace()
	for _, p := range r.Spec.ParentRefs {
		if p.Namespace != nil && string(*p.Namespace) != ns {
			continue // a shared Gateway elsewhere
		}
		if p.Kind != nil && *p.Kind != "Gateway" {
			continue
		}
		gw := c.gateways[key(ns, string(p.Name))]
		if gw == nil {
			c.errorf(o, "parent Gateway %s is not rendered", p.Name)
			continue
		}
		if p.SectionName != nil && !slices.ContainsFunc(gw.Spec.Listeners, func(l gatewayv1.Listener) bool { return l.Name == *p.SectionName }) {
			c.errorf(o, "Gateway %s has no listener %s", gw.Name, *p.SectionName)
		}
	}
	for _, rule := range r.Spec.Rules {
		for _, b := range rule.BackendRefs {
			if b.Kind != nil && *b.Kind != "Service" || b.Namespace != nil && string(*b.Namespace) != ns {
				continue
			}
			if b.Port == nil {
				c.errorf(o, "backend %s has no port", b.Name)
				continue
			}
			c.servicePort(o, ns, string(b.Name), *b.Port, "")
		}
	}
}

func (c *checker) ingress(o Object, ing *networkingv1.Ingress) {
	ns := o.Meta.GetNamespace()
	for _, rule := range ing.Spec.Rules {
		if rule.HTTP == nil {
			continue
		}
		for _, p := range rule.HTTP.Paths {
			if s := p.Backend.Service; s != nil {
				c.servicePort(o, ns, s.Name, s.Port.Number, s.Port.Name)
			}
		}
	}
}
