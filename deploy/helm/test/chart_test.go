package test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/kubernetes/scheme"
)

// repoRoot is the agent's repository, three levels up from deploy/helm/test.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// helmPath finds the helm CLI built by scripts/helm (or named by SECURE_AGENT_HELM).
func helmPath(t *testing.T) string {
	t.Helper()
	p := os.Getenv("SECURE_AGENT_HELM")
	if p == "" {
		p = filepath.Join(repoRoot(t), ".tools", "helm")
	}
	if info, err := os.Stat(p); err == nil && !info.IsDir() && info.Mode()&0o111 != 0 {
		return p
	}
	msg := fmt.Sprintf("helm not found at %s: run scripts/helm (builds it into .tools/helm) or set SECURE_AGENT_HELM", p)
	if os.Getenv("SECURE_AGENT_REQUIRE_INTEGRATION") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// objects is a rendered chart, decoded: kind/name -> typed object.
type objects map[string]runtime.Object

func (o objects) get(t *testing.T, kind, name string) runtime.Object {
	t.Helper()
	obj, ok := o[kind+"/"+name]
	if !ok {
		t.Fatalf("no %s/%s rendered; have %v", kind, name, o.keys())
	}
	return obj
}

func (o objects) has(kind, name string) bool { _, ok := o[kind+"/"+name]; return ok }

func (o objects) keys() []string {
	var ks []string
	for k := range o {
		ks = append(ks, k)
	}
	return ks
}

// render runs `helm template` with the given values and decodes every document strictly: an unknown
// or duplicated field, a wrong type or an unregistered kind fails the test.
func render(t *testing.T, values string, wantErr ...string) objects {
	t.Helper()
	helm := helmPath(t)
	vf := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(vf, []byte(values), 0o600); err != nil {
		t.Fatal(err)
	}
	// --kube-version: a helm built with `go install` lacks the release ldflags and assumes v1.20.
	cmd := exec.Command(helm, "template", "agent", filepath.Join(repoRoot(t), "deploy", "helm", "secure-agent"),
		"--namespace", "secure-agent", "--kube-version", "1.32.0", "-f", vf)
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+t.TempDir(), "HELM_CONFIG_HOME="+t.TempDir(), "HELM_DATA_HOME="+t.TempDir())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if len(wantErr) > 0 {
		if err == nil || !strings.Contains(stderr.String(), wantErr[0]) {
			t.Fatalf("helm template: want an error containing %q, got %v: %s", wantErr[0], err, stderr.String())
		}
		return nil
	}
	if err != nil {
		t.Fatalf("helm template: %v\n%s", err, stderr.String())
	}
	decoder := serializer.NewCodecFactory(scheme.Scheme, serializer.EnableStrict).UniversalDeserializer()
	out := objects{}
	for _, doc := range strings.Split(stdout.String(), "\n---") {
		if strings.TrimSpace(stripComments(doc)) == "" {
			continue
		}
		obj, gvk, err := decoder.Decode([]byte(doc), nil, nil)
		if err != nil {
			t.Fatalf("strict decode: %v\n%s", err, doc)
		}
		name := obj.(interface{ GetName() string }).GetName()
		key := gvk.Kind + "/" + name
		if _, dup := out[key]; dup {
			t.Fatalf("%s rendered twice", key)
		}
		out[key] = obj
	}
	return out
}

func stripComments(doc string) string {
	var b strings.Builder
	for _, l := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

const name = "agent-secure-agent"

func deployment(t *testing.T, o objects) (*appsv1.Deployment, corev1.Container) {
	t.Helper()
	d := o.get(t, "Deployment", name).(*appsv1.Deployment)
	if len(d.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("containers: %d", len(d.Spec.Template.Spec.Containers))
	}
	return d, d.Spec.Template.Spec.Containers[0]
}

func env(c corev1.Container) map[string]corev1.EnvVar {
	m := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		m[e.Name] = e
	}
	return m
}

func wantEnv(t *testing.T, c corev1.Container, name, value string) {
	t.Helper()
	e, ok := env(c)[name]
	if !ok {
		t.Fatalf("env %s not set", name)
	}
	if e.Value != value {
		t.Fatalf("env %s = %q, want %q", name, e.Value, value)
	}
}

func noEnv(t *testing.T, c corev1.Container, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, ok := env(c)[n]; ok {
			t.Fatalf("env %s set, want unset", n)
		}
	}
}

func wantSecretEnv(t *testing.T, c corev1.Container, name, secret, key string) {
	t.Helper()
	e, ok := env(c)[name]
	if !ok || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
		t.Fatalf("env %s not from a secret: %+v", name, e)
	}
	if r := e.ValueFrom.SecretKeyRef; r.Name != secret || r.Key != key || e.Value != "" {
		t.Fatalf("env %s from %s/%s (value %q), want %s/%s", name, r.Name, r.Key, e.Value, secret, key)
	}
}

func mount(t *testing.T, c corev1.Container, name string) corev1.VolumeMount {
	t.Helper()
	for _, m := range c.VolumeMounts {
		if m.Name == name {
			return m
		}
	}
	t.Fatalf("no volume mount %q in %+v", name, c.VolumeMounts)
	return corev1.VolumeMount{}
}

func volume(t *testing.T, d *appsv1.Deployment, name string) corev1.Volume {
	t.Helper()
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.Name == name {
			return v
		}
	}
	t.Fatalf("no volume %q", name)
	return corev1.Volume{}
}

func saAnnotations(t *testing.T, o objects) map[string]string {
	t.Helper()
	return o.get(t, "ServiceAccount", name).(*corev1.ServiceAccount).Annotations
}

func TestDefaults(t *testing.T) {
	o := render(t, "")
	if got := len(o); got != 2 {
		t.Fatalf("default objects: %v, want Deployment and ServiceAccount", o.keys())
	}
	d, c := deployment(t, o)
	if *d.Spec.Replicas != 1 {
		t.Fatalf("replicas %d", *d.Spec.Replicas)
	}
	if strings.Join(c.Args, " ") != "worker" || c.Image != "ghcr.io/secure-agent/secure-agent:dev" {
		t.Fatalf("args %v image %s", c.Args, c.Image)
	}
	// Probes on the metrics port, which SECURE_AGENT_HTTP_ADDRESS serves.
	wantEnv(t, c, "SECURE_AGENT_HTTP_ADDRESS", ":9090")
	if len(c.Ports) != 1 || c.Ports[0].ContainerPort != 9090 || c.Ports[0].Name != "metrics" {
		t.Fatalf("ports %+v", c.Ports)
	}
	if p := c.LivenessProbe.HTTPGet; p == nil || p.Path != "/healthz" || p.Port.String() != "metrics" {
		t.Fatalf("liveness %+v", c.LivenessProbe)
	}
	if p := c.ReadinessProbe.HTTPGet; p == nil || p.Path != "/readyz" || p.Port.String() != "metrics" {
		t.Fatalf("readiness %+v", c.ReadinessProbe)
	}
	wantEnv(t, c, "TEMPORAL_ADDRESS", "temporal-frontend.temporal.svc:7233")
	wantEnv(t, c, "TEMPORAL_NAMESPACE", "default")
	wantEnv(t, c, "SECURE_AGENT_AUDIT", "stdout")
	wantEnv(t, c, "SECURE_AGENT_TASK_QUEUE", "secure-agent")
	wantEnv(t, c, "SECURE_AGENT_OUTPUT_DIR", "/var/lib/secure-agent/output")
	noEnv(t, c, "SECURE_AGENT_POLICY_FILE", "SECURE_AGENT_CODEC_KEYS", "SECURE_AGENT_CODEC_KEYS_FILE",
		"TEMPORAL_API_KEY", "TEMPORAL_TLS", "TEMPORAL_TLS_CLIENT_CERT_PATH", "SECURE_AGENT_MAX_CONCURRENT_ACTIVITIES")
	// Hardening.
	ps := d.Spec.Template.Spec.SecurityContext
	if ps == nil || ps.RunAsNonRoot == nil || !*ps.RunAsNonRoot || *ps.RunAsUser != 65532 ||
		ps.SeccompProfile == nil || ps.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Fatalf("pod securityContext %+v", ps)
	}
	sc := c.SecurityContext
	if sc == nil || !*sc.RunAsNonRoot || !*sc.ReadOnlyRootFilesystem || *sc.AllowPrivilegeEscalation ||
		sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" ||
		len(sc.Capabilities.Add) != 0 || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Fatalf("container securityContext %+v", sc)
	}
	if d.Spec.Template.Spec.AutomountServiceAccountToken == nil || *d.Spec.Template.Spec.AutomountServiceAccountToken {
		t.Fatal("service account token automounted")
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Fatalf("resources %+v", c.Resources)
	}
	// Output on an emptyDir (the root filesystem is read-only).
	if m := mount(t, c, "output"); m.MountPath != "/var/lib/secure-agent/output" {
		t.Fatalf("output mount %+v", m)
	}
	if v := volume(t, d, "output"); v.EmptyDir == nil {
		t.Fatalf("output volume %+v", v)
	}
	if d.Spec.Template.Spec.ServiceAccountName != name {
		t.Fatalf("serviceAccountName %s", d.Spec.Template.Spec.ServiceAccountName)
	}
	if a := saAnnotations(t, o); len(a) != 0 {
		t.Fatalf("default SA annotations %v", a)
	}
	if _, ok := d.Spec.Template.Labels["azure.workload.identity/use"]; ok {
		t.Fatal("azure label without azure identity")
	}
}

func TestIRSA(t *testing.T) {
	o := render(t, `
serviceAccount:
  aws: {roleArn: "arn:aws:iam::123456789012:role/secure-agent"}
  annotations: {example.com/owner: data-platform}
`)
	a := saAnnotations(t, o)
	if a["eks.amazonaws.com/role-arn"] != "arn:aws:iam::123456789012:role/secure-agent" || a["example.com/owner"] != "data-platform" || len(a) != 2 {
		t.Fatalf("annotations %v", a)
	}
}

func TestAzureWorkloadIdentity(t *testing.T) {
	o := render(t, `
serviceAccount:
  azure: {clientId: 11111111-2222-3333-4444-555555555555, tenantId: 66666666-7777-8888-9999-000000000000}
`)
	a := saAnnotations(t, o)
	if a["azure.workload.identity/client-id"] != "11111111-2222-3333-4444-555555555555" ||
		a["azure.workload.identity/tenant-id"] != "66666666-7777-8888-9999-000000000000" {
		t.Fatalf("annotations %v", a)
	}
	d, _ := deployment(t, o)
	if d.Spec.Template.Labels["azure.workload.identity/use"] != "true" {
		t.Fatalf("pod labels %v", d.Spec.Template.Labels)
	}
	// The selector must not change with the identity (a Deployment's selector is immutable).
	if _, ok := d.Spec.Selector.MatchLabels["azure.workload.identity/use"]; ok {
		t.Fatal("azure label in the selector")
	}
}

func TestGCPWorkloadIdentity(t *testing.T) {
	o := render(t, `
serviceAccount:
  gcp: {serviceAccount: secure-agent@my-project.iam.gserviceaccount.com}
`)
	if a := saAnnotations(t, o); a["iam.gke.io/gcp-service-account"] != "secure-agent@my-project.iam.gserviceaccount.com" || len(a) != 1 {
		t.Fatalf("annotations %v", a)
	}
}

func TestTLSAPIKeyCodecPolicy(t *testing.T) {
	o := render(t, `
temporal:
  address: my-ns.a1b2c.tmprl.cloud:7233
  namespace: my-ns.a1b2c
  tls: {enabled: true, existingSecret: agent-tls, serverName: temporal.internal}
  apiKey: {existingSecret: temporal-cloud, key: token}
codecKeys: {existingSecret: agent-codec, key: keys}
agent:
  audit: /var/lib/secure-agent/output/audit.log
  maxConcurrentActivities: 4
  extraEnv: {SECURE_AGENT_SECRET_CACHE_TTL: 5m}
policy:
  version: 1
  stores: [aws]
  secrets:
    aws: ["prod/catalog/*"]
  destinations:
    default: deny
`)
	d, c := deployment(t, o)
	wantEnv(t, c, "TEMPORAL_ADDRESS", "my-ns.a1b2c.tmprl.cloud:7233")
	wantEnv(t, c, "TEMPORAL_NAMESPACE", "my-ns.a1b2c")
	wantEnv(t, c, "TEMPORAL_TLS", "true")
	wantEnv(t, c, "TEMPORAL_TLS_CLIENT_CERT_PATH", "/etc/temporal/tls/tls.crt")
	wantEnv(t, c, "TEMPORAL_TLS_CLIENT_KEY_PATH", "/etc/temporal/tls/tls.key")
	wantEnv(t, c, "TEMPORAL_TLS_SERVER_CA_CERT_PATH", "/etc/temporal/tls/ca.crt")
	wantEnv(t, c, "TEMPORAL_TLS_SERVER_NAME", "temporal.internal")
	wantSecretEnv(t, c, "TEMPORAL_API_KEY", "temporal-cloud", "token")
	wantSecretEnv(t, c, "SECURE_AGENT_CODEC_KEYS", "agent-codec", "keys")
	noEnv(t, c, "SECURE_AGENT_CODEC_KEYS_FILE")
	wantEnv(t, c, "SECURE_AGENT_AUDIT", "/var/lib/secure-agent/output/audit.log")
	wantEnv(t, c, "SECURE_AGENT_MAX_CONCURRENT_ACTIVITIES", "4")
	wantEnv(t, c, "SECURE_AGENT_SECRET_CACHE_TTL", "5m")
	wantEnv(t, c, "SECURE_AGENT_POLICY_FILE", "/etc/secure-agent/policy.yaml")

	if m := mount(t, c, "temporal-tls"); m.MountPath != "/etc/temporal/tls" || !m.ReadOnly {
		t.Fatalf("tls mount %+v", m)
	}
	if v := volume(t, d, "temporal-tls"); v.Secret == nil || v.Secret.SecretName != "agent-tls" {
		t.Fatalf("tls volume %+v", v)
	}
	if m := mount(t, c, "policy"); m.MountPath != "/etc/secure-agent/policy.yaml" || m.SubPath != "policy.yaml" || !m.ReadOnly {
		t.Fatalf("policy mount %+v", m)
	}
	cm := o.get(t, "ConfigMap", name+"-policy").(*corev1.ConfigMap)
	if v := volume(t, d, "policy"); v.ConfigMap == nil || v.ConfigMap.Name != cm.Name {
		t.Fatalf("policy volume %+v", v)
	}
	pol := cm.Data["policy.yaml"]
	for _, want := range []string{"version: 1", "stores:\n- aws", "prod/catalog/*", "default: deny"} {
		if !strings.Contains(pol, want) {
			t.Fatalf("policy.yaml lacks %q:\n%s", want, pol)
		}
	}
	if d.Spec.Template.Annotations["checksum/policy"] == "" {
		t.Fatal("no policy checksum annotation")
	}
}

func TestCodecKeysFile(t *testing.T) {
	o := render(t, `
codecKeys: {existingSecret: agent-codec, key: keys.txt, mountAs: file}
`)
	d, c := deployment(t, o)
	wantEnv(t, c, "SECURE_AGENT_CODEC_KEYS_FILE", "/etc/secure-agent/codec/keys.txt")
	noEnv(t, c, "SECURE_AGENT_CODEC_KEYS")
	if m := mount(t, c, "codec-keys"); m.MountPath != "/etc/secure-agent/codec" || !m.ReadOnly {
		t.Fatalf("codec mount %+v", m)
	}
	v := volume(t, d, "codec-keys")
	if v.Secret == nil || v.Secret.SecretName != "agent-codec" || *v.Secret.DefaultMode != 0o400 ||
		len(v.Secret.Items) != 1 || *v.Secret.Items[0].Mode != 0o400 || v.Secret.Items[0].Path != "keys.txt" {
		t.Fatalf("codec volume %+v", v.Secret)
	}
	render(t, "codecKeys: {existingSecret: x, mountAs: volume}\n", "codecKeys.mountAs must be env or file")
	render(t, "temporal: {tls: {enabled: true}}\n", "temporal.tls.existingSecret is required")
}

func TestReplicasAndPDB(t *testing.T) {
	o := render(t, "replicaCount: 3\n")
	d, _ := deployment(t, o)
	if *d.Spec.Replicas != 3 {
		t.Fatalf("replicas %d", *d.Spec.Replicas)
	}
	pdb := o.get(t, "PodDisruptionBudget", name).(*policyv1.PodDisruptionBudget)
	if pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntValue() != 1 || pdb.Spec.MaxUnavailable != nil {
		t.Fatalf("pdb %+v", pdb.Spec)
	}
	for k, v := range d.Spec.Selector.MatchLabels {
		if pdb.Spec.Selector.MatchLabels[k] != v {
			t.Fatalf("pdb selector %v, deployment %v", pdb.Spec.Selector.MatchLabels, d.Spec.Selector.MatchLabels)
		}
	}
	if o := render(t, "replicaCount: 1\n"); o.has("PodDisruptionBudget", name) {
		t.Fatal("PDB with one replica would block node drains")
	}
	render(t, "replicaCount: 2\noutput: {persistence: {enabled: true}}\n", "ReadWriteOnce cannot be shared")
}

func TestPersistentOutput(t *testing.T) {
	o := render(t, "output: {persistence: {enabled: true, size: 20Gi, storageClass: gp3}}\n")
	d, _ := deployment(t, o)
	pvc := o.get(t, "PersistentVolumeClaim", name+"-output").(*corev1.PersistentVolumeClaim)
	if v := volume(t, d, "output"); v.PersistentVolumeClaim == nil || v.PersistentVolumeClaim.ClaimName != pvc.Name {
		t.Fatalf("output volume %+v", v)
	}
	if q := pvc.Spec.Resources.Requests[corev1.ResourceStorage]; q.String() != "20Gi" || *pvc.Spec.StorageClassName != "gp3" {
		t.Fatalf("pvc %+v", pvc.Spec)
	}
	o = render(t, "output: {persistence: {enabled: true, existingClaim: mine}}\n")
	d, _ = deployment(t, o)
	if o.has("PersistentVolumeClaim", name+"-output") || volume(t, d, "output").PersistentVolumeClaim.ClaimName != "mine" {
		t.Fatal("existingClaim not used")
	}
}

func TestNetworkPolicyAndService(t *testing.T) {
	o := render(t, `
metrics: {service: {enabled: true}}
networkPolicy:
  enabled: true
  egress:
    - cidr: 10.20.0.0/16
      ports: [{port: 7233, protocol: TCP}, {port: 5432, protocol: TCP}]
    - cidr: 0.0.0.0/0
      except: [169.254.169.254/32]
      ports: [{port: 443, protocol: TCP}]
`)
	np := o.get(t, "NetworkPolicy", name).(*networkingv1.NetworkPolicy)
	if len(np.Spec.PolicyTypes) != 2 || np.Spec.PolicyTypes[0] != networkingv1.PolicyTypeIngress || np.Spec.PolicyTypes[1] != networkingv1.PolicyTypeEgress {
		t.Fatalf("policyTypes %v", np.Spec.PolicyTypes)
	}
	if len(np.Spec.Ingress) != 1 || len(np.Spec.Ingress[0].Ports) != 1 || np.Spec.Ingress[0].Ports[0].Port.String() != "metrics" ||
		np.Spec.Ingress[0].From[0].NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"] != "monitoring" {
		t.Fatalf("ingress %+v", np.Spec.Ingress)
	}
	if len(np.Spec.Egress) != 3 {
		t.Fatalf("egress %+v", np.Spec.Egress)
	}
	dns := np.Spec.Egress[0]
	if len(dns.Ports) != 2 || dns.Ports[0].Port.IntValue() != 53 || dns.To[0].PodSelector.MatchLabels["k8s-app"] != "kube-dns" {
		t.Fatalf("dns egress %+v", dns)
	}
	if e := np.Spec.Egress[1]; e.To[0].IPBlock.CIDR != "10.20.0.0/16" || len(e.Ports) != 2 || e.Ports[1].Port.IntValue() != 5432 {
		t.Fatalf("egress[1] %+v", e)
	}
	if e := np.Spec.Egress[2]; e.To[0].IPBlock.CIDR != "0.0.0.0/0" || e.To[0].IPBlock.Except[0] != "169.254.169.254/32" {
		t.Fatalf("egress[2] %+v", e)
	}
	d, _ := deployment(t, o)
	for k, v := range np.Spec.PodSelector.MatchLabels {
		if d.Spec.Template.Labels[k] != v {
			t.Fatalf("networkpolicy selects %v, pods are %v", np.Spec.PodSelector.MatchLabels, d.Spec.Template.Labels)
		}
	}
	svc := o.get(t, "Service", name+"-metrics").(*corev1.Service)
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 9090 || svc.Spec.Ports[0].TargetPort.String() != "metrics" {
		t.Fatalf("service %+v", svc.Spec)
	}
}

// The strict decoder is what the tests above rely on: prove it refuses an unknown field.
func TestStrictDecoderRefusesUnknownFields(t *testing.T) {
	decoder := serializer.NewCodecFactory(scheme.Scheme, serializer.EnableStrict).UniversalDeserializer()
	_, _, err := decoder.Decode([]byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {}\nbogus: 1\n"), nil, nil)
	if err == nil || !strings.Contains(err.Error(), "bogus") {
		t.Fatalf("want an unknown field error, got %v", err)
	}
}
