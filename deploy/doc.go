// Package deploy holds what runs recallq somewhere else than a developer's
// shell: the container image (Dockerfile), the Kubernetes manifests (k8s/)
// and the secrets folder of the top-level docker-compose.yml. It has no Go
// code of its own; its tests check those files against the program as it
// is built: every command, flag, environment variable, port and probe path
// they name must exist in recallq, the Dockerfile's build command must
// build a static binary, and the services they describe must start and
// answer their probes.
package deploy
