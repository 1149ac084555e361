//! Secrets read once per run. A deploy asks about the app Secret and the pull secret from
//! several places (what is missing, the image's registry login, the preflight), each a whole
//! read; this layer under the client answers a repeated GET of the same Secret from the first
//! answer, until this process writes a Secret (or runs a hook that may), which forgets every
//! answer. Nothing else is kept, and nothing outlives the process.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use kube::client::{Body, DynBody};
use tower::{BoxError, Layer, Service};

/// One kept answer, and the generation it was read in.
#[derive(Clone)]
struct Kept {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
    generation: u64,
}

/// Bumped by [`forget_secret_reads`]: answers of an earlier generation are not used.
static GENERATION: AtomicU64 = AtomicU64::new(0);

/// Forgets every Secret read kept so far, in every client: called after something outside
/// this process (a hook running kubectl) may have written Secrets.
pub fn forget_secret_reads() {
    GENERATION.fetch_add(1, Ordering::SeqCst);
}

/// The layer; each client built with it keeps its own answers (only [`forget_secret_reads`]'s
/// generation is shared).
#[derive(Clone, Default)]
pub struct SecretReads {
    kept: Arc<Mutex<HashMap<String, Kept>>>,
}

impl<S> Layer<S> for SecretReads {
    type Service = SecretReadsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SecretReadsService {
            inner,
            kept: self.kept.clone(),
        }
    }
}

pub struct SecretReadsService<S> {
    inner: S,
    kept: Arc<Mutex<HashMap<String, Kept>>>,
}

/// `/api/v1/namespaces/NS/secrets` for a request on one of its Secrets (or the collection).
fn secrets_collection(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/api/v1/namespaces/")?;
    let (ns, rest) = rest.split_once('/')?;
    let after = rest.strip_prefix("secrets")?;
    let len = "/api/v1/namespaces/".len() + ns.len() + "/secrets".len();
    (after.is_empty() || after.starts_with('/')).then(|| &path[..len])
}

fn answer(kept: &Kept) -> Response<Box<DynBody>> {
    let mut r = Response::new(boxed(kept.body.clone()));
    *r.status_mut() = kept.status;
    *r.headers_mut() = kept.headers.clone();
    r
}

fn boxed(body: Bytes) -> Box<DynBody> {
    Box::new(Full::new(body).map_err(|never| match never {}))
}

type Answer = Pin<Box<dyn Future<Output = Result<Response<Box<DynBody>>, BoxError>> + Send>>;

impl<S> Service<Request<Body>> for SecretReadsService<S>
where
    S: Service<Request<Body>, Response = Response<Box<DynBody>>, Error = BoxError>,
    S::Future: Send + 'static,
{
    type Response = Response<Box<DynBody>>;
    type Error = BoxError;
    type Future = Answer;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let path = req.uri().path().to_string();
        let Some(collection) = secrets_collection(&path).map(str::len) else {
            return Box::pin(self.inner.call(req));
        };
        // One Secret by name, not the collection's list or a watch.
        let one = path.len() > collection && req.uri().query().is_none();
        if req.method() != Method::GET {
            // A write (or anything but a read) forgets every answer kept, in every client of
            // this process, as it starts and again once it has landed: a read answered in
            // between may hold either version.
            forget_secret_reads();
            let sent = self.inner.call(req);
            return Box::pin(async move {
                let answer = sent.await;
                forget_secret_reads();
                answer
            });
        }
        if !one {
            return Box::pin(self.inner.call(req));
        }
        let generation = GENERATION.load(Ordering::SeqCst);
        if let Some(kept) = self
            .kept
            .lock()
            .expect("kept reads")
            .get(&path)
            .filter(|k| k.generation == generation)
        {
            let r = answer(kept);
            return Box::pin(async move { Ok(r) });
        }
        let kept = self.kept.clone();
        let sent = self.inner.call(req);
        Box::pin(async move {
            let response = sent.await?;
            let status = response.status();
            if status != StatusCode::OK && status != StatusCode::NOT_FOUND {
                return Ok(response);
            }
            let (parts, body) = response.into_parts();
            let bytes = body.collect().await?.to_bytes();
            let entry = Kept {
                status,
                headers: parts.headers.clone(),
                body: bytes.clone(),
                generation,
            };
            kept.lock().expect("kept reads").insert(path, entry);
            Ok(Response::from_parts(parts, boxed(bytes)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use tower::ServiceExt;

    /// A server that answers every request with how many it has had, and counts them.
    fn counting() -> (
        Arc<AtomicUsize>,
        impl Service<
            Request<Body>,
            Response = Response<Box<DynBody>>,
            Error = BoxError,
            Future = impl Send + 'static,
        > + Clone,
    ) {
        let seen = Arc::new(AtomicUsize::new(0));
        let count = seen.clone();
        let service = tower::service_fn(move |_req: Request<Body>| {
            let n = count.fetch_add(1, Ordering::SeqCst) + 1;
            async move { Ok::<_, BoxError>(Response::new(boxed(Bytes::from(n.to_string())))) }
        });
        (seen, service)
    }

    async fn send(
        svc: &mut (
                 impl Service<Request<Body>, Response = Response<Box<DynBody>>, Error = BoxError> + Send
             ),
        method: Method,
        path: &str,
    ) -> String {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .body(Body::from(Vec::new()))
            .unwrap();
        let r = svc.ready().await.unwrap().call(req).await.unwrap();
        let body = r.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(body.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn a_secret_is_read_once_until_a_write() {
        let (seen, inner) = counting();
        let mut svc = SecretReads::default().layer(inner);
        let secret = "/api/v1/namespaces/a/secrets/s";
        assert_eq!(send(&mut svc, Method::GET, secret).await, "1");
        assert_eq!(send(&mut svc, Method::GET, secret).await, "1", "kept");
        // Other kinds and lists are never kept.
        let map = "/api/v1/namespaces/a/configmaps/c";
        assert_eq!(send(&mut svc, Method::GET, map).await, "2");
        assert_eq!(send(&mut svc, Method::GET, map).await, "3");
        assert_eq!(send(&mut svc, Method::PATCH, secret).await, "4");
        assert_eq!(
            send(&mut svc, Method::GET, secret).await,
            "5",
            "read again after a write"
        );
        assert_eq!(send(&mut svc, Method::GET, secret).await, "5");
        forget_secret_reads();
        assert_eq!(
            send(&mut svc, Method::GET, secret).await,
            "6",
            "and after a hook"
        );
        assert_eq!(seen.load(Ordering::SeqCst), 6);
    }

    #[test]
    fn only_secret_paths_are_kept() {
        let cases = [
            (
                "/api/v1/namespaces/a/secrets/b",
                Some("/api/v1/namespaces/a/secrets"),
            ),
            (
                "/api/v1/namespaces/a/secrets",
                Some("/api/v1/namespaces/a/secrets"),
            ),
            ("/api/v1/namespaces/a/secretsx/b", None),
            ("/api/v1/namespaces/a/configmaps/b", None),
            ("/apis/apps/v1/namespaces/a/deployments/b", None),
        ];
        for (path, want) in cases {
            assert_eq!(secrets_collection(path), want, "{path}");
        }
    }
}
