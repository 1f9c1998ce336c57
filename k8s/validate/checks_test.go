package validate

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestChecksCatch breaks a good rendering in the ways the checks are for,
// and requires that each break is caught: a check that passes everything
// proves nothing.
func TestChecksCatch(t *testing.T) {
	s := setup(t)
	good, err := s.render(t, "command-service", "ci/default-values.yaml")
	require.NoError(t, err)
	objs, err := s.decoder.DecodeAll("good", good)
	require.NoError(t, err)
	require.Empty(t, Check(objs, release), "the unbroken rendering passes")

	for _, tc := range []struct {
		name, old, new, want string
	}{
		{"unknown field", "readOnlyRootFilesystem: true", "readOnlyRootFilesytem: true", `unknown field "spec.template.spec.containers[0].securityContext.readOnlyRootFilesytem"`},
		{"duplicate field", "          imagePullPolicy: IfNotPresent\n", "          imagePullPolicy: IfNotPresent\n          imagePullPolicy: Always\n", "imagePullPolicy"},
		{"writable root", "readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false", "readOnlyRootFilesystem must be true"},
		{"escalation", "allowPrivilegeEscalation: false", "allowPrivilegeEscalation: true", "allowPrivilegeEscalation must be false"},
		{"capabilities", "              - ALL", "              - NET_RAW", "capabilities must drop ALL"},
		{"root", "runAsNonRoot: true", "runAsNonRoot: false", "runAsNonRoot must be true"},
		{"seccomp", "type: RuntimeDefault", "type: Unconfined", "seccompProfile must be RuntimeDefault"},
		{"token", "      automountServiceAccountToken: false", "      automountServiceAccountToken: true", "automountServiceAccountToken must be false"},
		{"readiness", "path: /readyz", "path: /healthz", "readinessProbe must GET /readyz"},
		{"grace", "terminationGracePeriodSeconds: 30", "terminationGracePeriodSeconds: 20", "does not outlast preStop"},
		{"service port", "targetPort: admin", "targetPort: metrics", "target metrics is no container port"},
		{"selector", "  selector:\n    app.kubernetes.io/name: command-service", "  selector:\n    app.kubernetes.io/name: nothing", "selects no rendered pod"},
		{"config map", "            name: orderstream-command-service\n        - name: tmp", "            name: orderstream-missing\n        - name: tmp", "ConfigMap orderstream-missing is not rendered"},
		{"label", "app.kubernetes.io/part-of: orderstream", "app.kubernetes.io/part-of: order stream", "part-of"},
		{"latest", "image: orderstream/command-service:0.1.0", "image: orderstream/command-service:latest", "is :latest"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Contains(t, string(good), tc.old)
			bad := strings.ReplaceAll(string(good), tc.old, tc.new)
			objs, err := s.decoder.DecodeAll("bad", []byte(bad))
			var msgs []string
			if err != nil {
				msgs = append(msgs, err.Error())
			} else {
				for _, e := range Check(objs, release) {
					msgs = append(msgs, e.Error())
				}
			}
			require.NotEmpty(t, msgs, "not caught")
			require.Contains(t, strings.Join(msgs, "\n"), tc.want)
		})
	}
}

// TestChecksCatchExternalServices breaks the Services without selectors of
// the local cluster's values (externalServices) and their EndpointSlices.
func TestChecksCatchExternalServices(t *testing.T) {
	s := setup(t)
	good, err := s.render(t, umbrella, localValues)
	require.NoError(t, err)
	objs, err := s.decoder.DecodeAll("good", good)
	require.NoError(t, err)
	require.Empty(t, Check(objs, release), "the unbroken rendering passes")
	slice := "kubernetes.io/service-name: orderstream-kafka\n"
	for _, tc := range []struct {
		name, old, new, want string
	}{
		{"no slice", slice, "kubernetes.io/service-name: orderstream-other\n", "no selector and no EndpointSlice"},
		{"port name", "  - name: kafka\n    port: 9094\n", "  - name: broker\n    port: 9094\n", "port broker 9094 is no port of Service orderstream-kafka"},
		{"port number", "  - name: kafka\n    port: 9094\n", "  - name: kafka\n    port: 9092\n", "port kafka 9092 is no port"},
		{"loopback", `- addresses: ["10.243.0.1"]`, `- addresses: ["127.0.0.1"]`, `address "127.0.0.1"`},
		{"hostname", `- addresses: ["10.243.0.1"]`, `- addresses: ["kafka.example.com"]`, `address "kafka.example.com"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Contains(t, string(good), tc.old)
			bad := strings.Replace(string(good), tc.old, tc.new, 1)
			objs, err := s.decoder.DecodeAll("bad", []byte(bad))
			require.NoError(t, err)
			var msgs []string
			for _, e := range Check(objs, release) {
				msgs = append(msgs, e.Error())
			}
			require.Contains(t, strings.Join(msgs, "\n"), tc.want)
		})
	}
}
