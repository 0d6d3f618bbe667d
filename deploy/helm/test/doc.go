// Package test renders the secure-agent Helm chart (deploy/helm/secure-agent) with the real helm
// CLI and decodes every object strictly into the Kubernetes API types. It is a module of its own so
// the agent's module does not depend on the Kubernetes libraries.
package test
