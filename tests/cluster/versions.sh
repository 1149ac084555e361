# Pinned versions of the test control plane; sourced by build, up and down.
# Kubernetes stays inside the range of the k8s-openapi feature the plugin pins (v1_33).
KUBE_VERSION=v1.33.13
KUBE_MINOR=33
ETCD_VERSION=v3.5.21 # the etcd that k8s.io/kubernetes v1.33.13 requires (see go.mod)
KWOK_VERSION=v0.7.0  # built against k8s.io/* v0.33
CLUSTER_CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/kubectl-rails/cluster/$KUBE_VERSION-kwok-$KWOK_VERSION"
# The real node's ingress controller: HAProxy Ingress with Debian's haproxy (Traefik v3 cannot
# be built from the module proxy; ingress-nginx needs its own nginx with Lua modules).
HAPROXY_INGRESS_VERSION=v0.16.1
HAPROXY_INGRESS_CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/kubectl-rails/haproxy-ingress/$HAPROXY_INGRESS_VERSION"
# The Gateway API's CRDs (standard channel), from its Go module: HAProxy Ingress serves its
# HTTPRoutes beside Ingresses (it writes no route status before v0.17, which the module proxy
# does not serve).
GATEWAY_API_VERSION=v1.4.1
# Helm, the third side of the benchmark (BENCHMARKS.md): built from the module proxy, cached.
HELM_VERSION=v3.19.0
HELM_CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/kubectl-rails/tools/helm-$HELM_VERSION"
# kube-score, the outside judge of the rendered manifests (tests/e2e/hardening.rs): built from the
# module proxy, cached.
KUBE_SCORE_VERSION=v1.20.0
KUBE_SCORE_CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/kubectl-rails/tools/kube-score-$KUBE_SCORE_VERSION"
# BuildKit (buildkitd, buildctl) for the real node's builder image (`images`, ref buildkit-*):
# built from the module proxy through the wrapper module in buildkit/ (its go.mod must require
# this version), cached.
BUILDKIT_VERSION=v0.26.3
# RootlessKit, for the builder image's rootless mode (`rootlesskit buildkitd`, as BuildKit's
# rootless image runs it): `go install`ed from the module proxy into BUILDKIT_CACHE.
ROOTLESSKIT_VERSION=v2.3.6
BUILDKIT_CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/kubectl-rails/tools/buildkit-$BUILDKIT_VERSION"
