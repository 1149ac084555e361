//! The seed's hand-written manifests (a Spanish how-to: "Desplegando una app Rails en
//! Kubernetes"), written for the example app as its author would: a Deployment whose env holds
//! the values in plain text and that names the pull secret `regcred`, a Service on port 3000 and
//! an Ingress on `/`. As in the seed: no readiness probe, no preStop hook, the default rolling
//! update. Four things differ, because this cluster and this app need them: the pods ask for the
//! real node (node selector and toleration); the Ingress names a host (other apps share the
//! controller), uses the cluster's default class (HAProxy) instead of `nginx` with a regex path,
//! and lists the host under `tls` (the example app has `force_ssl` on, and HAProxy Ingress serves
//! HTTPS only for hosts listed there; the controller's default certificate covers it).

use crate::node::RealNode;

pub const DEPLOYMENT: &str = "blog-depl";

/// `k8s/is-depl.yml` and `k8s/ingress-srv.yml` of the seed, for `image`.
pub fn manifests(
    node: &RealNode,
    image: &str,
    host: &str,
    database_url: &str,
    master_key: &str,
) -> [(&'static str, String); 2] {
    let (label, value) = node.get("REAL_NODE_SELECTOR").split_once('=').unwrap();
    let taint = node.get("REAL_NODE_TAINT");
    let deployment = format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: {DEPLOYMENT}
spec:
  replicas: 2
  selector:
    matchLabels:
      app: blog
  template:
    metadata:
      labels:
        app: blog
    spec:
      containers:
        - name: blog
          image: {image}
          env:
            - name: DATABASE_URL
              value: '{database_url}'
            - name: RAILS_MASTER_KEY
              value: '{master_key}'
      imagePullSecrets:
        - name: regcred
      nodeSelector:
        {label}: "{value}"
      tolerations:
        - key: {taint}
          operator: Exists
          effect: NoSchedule
---
apiVersion: v1
kind: Service
metadata:
  name: blog-srv
spec:
  selector:
    app: blog
  ports:
    - name: blog
      protocol: TCP
      port: 3000
      targetPort: 3000
"#
    );
    let ingress = format!(
        r#"apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: ingress-service
spec:
  tls:
    - hosts:
        - {host}
  rules:
    - host: {host}
      http:
        paths:
          - path: /
            pathType: Prefix
            backend:
              service:
                name: blog-srv
                port:
                  number: 3000
"#
    );
    [("is-depl.yml", deployment), ("ingress-srv.yml", ingress)]
}
