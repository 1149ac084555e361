//! One deploy of an app at a time: a `coordination.k8s.io` Lease held for the whole deploy and
//! renewed while it runs. A crashed deploy's lease expires on its own.
//!
//! The lease is ours only while its `holderIdentity` is: renewal writes only over the lease as
//! we last wrote it (a replace conditional on that resourceVersion; after a conflict, only over
//! one read back as still ours), a deploy checks before each write that it still holds it, and
//! release deletes only our own lease (a delete conditional on its uid and resourceVersion). A
//! deploy that was stopped long enough for its lease to expire and be taken stops before writing
//! anything more: the check before a write reads the lease again unless we wrote or read it as
//! ours within the last [`TRUST_FOR`], by both the monotonic and the wall clock (the wall clock
//! also runs while a laptop sleeps), far less than the lease's duration that another deploy must
//! see it unchanged before taking it.
//!
//! Expiry is judged by this machine's monotonic clock only: another holder's lease is taken once
//! we have seen it unchanged for its whole duration, never because its `renewTime` (the holder's
//! clock) looks old by ours, so clock skew cannot take a live lease (client-go's leader
//! election does the same). The holder, for its part, stops its deploy when it could not renew
//! for nearly a lease duration: by then another deploy may take it.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Api;
use kube::api::{DeleteParams, PostParams, Preconditions};
use kubectl_rails_kube::api_err;
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;

use crate::DeployError;

const DURATION_SECS: i32 = 30;
const RENEW_EVERY: Duration = Duration::from_secs(10);
/// After a failed renewal, the next try comes sooner.
const RETRY_EVERY: Duration = Duration::from_secs(2);
/// A deploy whose lease could not be renewed stops this long before another may take it.
const GIVE_UP_BEFORE: Duration = Duration::from_secs(5);
/// How often a lease that looks expired is read again while we wait to take it.
const LOOK_EVERY: Duration = Duration::from_secs(1);
/// How long a write or read that showed the lease ours spares the check before a write its read.
const TRUST_FOR: Duration = Duration::from_secs(5);

/// The lease as we last wrote or read it as ours, and when.
#[derive(Clone)]
struct Confirmed {
    lease: Lease,
    at: Instant,
    wall: SystemTime,
}

impl Confirmed {
    fn now(lease: Lease) -> Self {
        Self {
            lease,
            at: Instant::now(),
            wall: SystemTime::now(),
        }
    }

    /// Both clocks agree that it is recent; a wall clock that went back is not trusted.
    fn recent(&self) -> bool {
        self.at.elapsed() < TRUST_FOR
            && SystemTime::now()
                .duration_since(self.wall)
                .is_ok_and(|d| d < TRUST_FOR)
    }
}

type Shared = Arc<Mutex<Confirmed>>;

/// Who holds the lease: `user@host`, and a random id for this run, so that two deploys by the
/// same person on the same machine are told apart.
pub fn holder_identity(user_at_host: &str) -> String {
    static RUN: OnceLock<String> = OnceLock::new();
    let run = RUN.get_or_init(|| {
        let mut bytes = [0u8; 4];
        // Without OS randomness, the process id and the time still tell runs apart.
        if getrandom::fill(&mut bytes).is_err() {
            let t = Timestamp::now().as_nanosecond() as u32 ^ std::process::id();
            bytes = t.to_be_bytes();
        }
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    });
    format!("{user_at_host} (run {run})")
}

/// This machine's name, on every OS, for the lease holder and the release record.
pub fn host_name() -> String {
    hostname::get()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".into())
}

/// What the renewal last learned.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Held,
    /// Another holder took it (or it was deleted).
    Lost(String),
    /// Renewal failed for this long, nearly the lease's duration.
    Unrenewed(Duration),
}

/// A held lease; dropping it without [`DeployLease::release`] stops its renewal and leaves it
/// to expire.
pub struct DeployLease {
    api: Api<Lease>,
    name: String,
    app: String,
    holder: String,
    state: watch::Receiver<State>,
    confirmed: Shared,
    stop: Option<oneshot::Sender<()>>,
    renewal: tokio::task::JoinHandle<()>,
}

impl Drop for DeployLease {
    fn drop(&mut self) {
        if self.stop.is_some() {
            self.renewal.abort();
        }
    }
}

fn lease_name(app: &str) -> String {
    format!("{app}-deploy")
}

fn spec(holder: &str, acquired: Option<MicroTime>) -> LeaseSpec {
    let now = MicroTime(Timestamp::now());
    LeaseSpec {
        holder_identity: Some(holder.to_string()),
        lease_duration_seconds: Some(DURATION_SECS),
        acquire_time: Some(acquired.unwrap_or_else(|| now.clone())),
        renew_time: Some(now),
        ..LeaseSpec::default()
    }
}

fn holder_of(lease: &Lease) -> Option<&str> {
    lease.spec.as_ref()?.holder_identity.as_deref()
}

/// Whether the lease looks expired by comparing its `renewTime` with `now` on this machine. The
/// two clocks may disagree, so this only decides whether to look closer (see [`Watch`]): a
/// lease that looks live is reported as held at once.
fn looks_expired(lease: &Lease, now: Timestamp) -> bool {
    let Some(s) = &lease.spec else { return true };
    let Some(renewed) = &s.renew_time else {
        return true;
    };
    renewed
        .0
        .checked_add(SignedDuration::from_secs(
            duration_of(lease).as_secs() as i64
        ))
        .is_ok_and(|until| until < now)
}

fn duration_of(lease: &Lease) -> Duration {
    let secs = lease
        .spec
        .as_ref()
        .and_then(|s| s.lease_duration_seconds)
        .unwrap_or(DURATION_SECS);
    Duration::from_secs(u64::try_from(secs).unwrap_or(0))
}

/// What a deploy has seen of a lease another holder has: the version it first saw, and when (by
/// this machine's monotonic clock).
struct Watch {
    version: Option<String>,
    since: Instant,
    duration: Duration,
}

#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// It changed: its holder is alive (or another deploy took it).
    Alive,
    /// Unchanged for its whole duration since we first saw it: its holder is gone.
    Expired,
    /// Look again later.
    Wait,
}

impl Watch {
    fn new(lease: &Lease, now: Instant) -> Self {
        Self {
            version: lease.metadata.resource_version.clone(),
            since: now,
            duration: duration_of(lease),
        }
    }

    fn judge(&self, lease: &Lease, now: Instant) -> Verdict {
        if lease.metadata.resource_version != self.version {
            Verdict::Alive
        } else if now.duration_since(self.since) >= self.duration {
            Verdict::Expired
        } else {
            Verdict::Wait
        }
    }
}

/// Takes the app's deploy lease, or says who holds it. A lease that looks expired is taken
/// only once it has stayed unchanged for its duration while we watched (`reporter` says so).
pub async fn acquire(
    client: &kube::Client,
    namespace: &str,
    app: &str,
    holder: &str,
    reporter: &dyn crate::Reporter,
) -> Result<DeployLease, DeployError> {
    let api: Api<Lease> = Api::namespaced(client.clone(), namespace);
    let name = lease_name(app);
    let locked = |lease: &Lease| DeployError::Locked {
        app: app.to_string(),
        holder: holder_of(lease).unwrap_or("unknown").to_string(),
        since: lease
            .spec
            .as_ref()
            .and_then(|s| s.acquire_time.as_ref())
            .map(|t| t.0.to_string())
            .unwrap_or_default(),
    };
    let read = || async {
        api.get_opt(&name)
            .await
            .map_err(api_err(format!("read the deploy lease of `{app}`")))
    };
    // Usually nobody holds it: create first, and read only when it exists.
    let fresh = Lease {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            ..ObjectMeta::default()
        },
        spec: Some(spec(holder, None)),
    };
    let mut watch: Option<Watch> = None;
    let result = loop {
        let existing = match api.create(&PostParams::default(), &fresh).await {
            Err(kube::Error::Api(s)) if s.code == 409 => read().await?,
            other => break other,
        };
        let Some(existing) = existing else {
            continue; // deleted in between: create again
        };
        let verdict = match &watch {
            None if !looks_expired(&existing, Timestamp::now()) => Verdict::Alive,
            None => {
                let w = Watch::new(&existing, Instant::now());
                reporter.step(&format!(
                    "the deploy lease of `{app}` held by {} looks expired; taking it once it stays unchanged for {}s",
                    holder_of(&existing).unwrap_or("unknown"),
                    w.duration.as_secs()
                ));
                watch = Some(w);
                Verdict::Wait
            }
            Some(w) => w.judge(&existing, Instant::now()),
        };
        match verdict {
            Verdict::Alive => return Err(locked(&existing)),
            Verdict::Wait => tokio::time::sleep(LOOK_EVERY).await,
            Verdict::Expired => {
                // Replacing with the resourceVersion we read makes a race with another taker a
                // 409.
                let mut lease = existing;
                lease.spec = Some(spec(holder, None));
                break api.replace(&name, &PostParams::default(), &lease).await;
            }
        }
    };
    let taken = match result {
        Ok(lease) => lease,
        Err(kube::Error::Api(s)) if s.code == 409 => {
            return Err(match read().await? {
                Some(lease) => locked(&lease),
                None => DeployError::Locked {
                    app: app.to_string(),
                    holder: "unknown".into(),
                    since: String::new(),
                },
            });
        }
        Err(e) => return Err(api_err(format!("take the deploy lease of `{app}`"))(e).into()),
    };
    let confirmed: Shared = Arc::new(Mutex::new(Confirmed::now(taken)));
    let (state, state_rx) = watch::channel(State::Held);
    let (stop, stop_rx) = oneshot::channel();
    let renewal = tokio::spawn(renew_until_stopped(
        api.clone(),
        holder.to_string(),
        confirmed.clone(),
        state,
        stop_rx,
    ));
    Ok(DeployLease {
        api,
        name,
        app: app.to_string(),
        holder: holder.to_string(),
        state: state_rx,
        confirmed,
        stop: Some(stop),
        renewal,
    })
}

/// Renews every [`RENEW_EVERY`] (sooner after a failure) until stopped, the lease is lost, or
/// renewal has failed for so long that another deploy may take it.
async fn renew_until_stopped(
    api: Api<Lease>,
    holder: String,
    confirmed: Shared,
    state: watch::Sender<State>,
    mut stop: oneshot::Receiver<()>,
) {
    // Measured from before the request that renewed it, so that it errs early.
    let mut renewed_at = Instant::now();
    let mut wait = RENEW_EVERY;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = &mut stop => return,
        }
        let sent = Instant::now();
        match renew(&api, &holder, &confirmed).await {
            Renewal::Renewed => {
                renewed_at = sent;
                wait = RENEW_EVERY;
            }
            Renewal::TryAgain => {
                let failing = renewed_at.elapsed();
                if failing + GIVE_UP_BEFORE >= Duration::from_secs(DURATION_SECS as u64) {
                    let _ = state.send(State::Unrenewed(failing));
                    return;
                }
                wait = RETRY_EVERY;
            }
            Renewal::Lost(to) => {
                let _ = state.send(State::Lost(to));
                return;
            }
        }
    }
}

enum Renewal {
    Renewed,
    /// A read or write failed for a reason that may pass (a 409 from a race, a network blip).
    TryAgain,
    /// Someone else holds it now, or it is gone.
    Lost(String),
}

fn taker(lease: Option<&Lease>) -> String {
    match lease.and_then(holder_of) {
        Some(h) => h.to_string(),
        None => "nobody (the lease was deleted)".into(),
    }
}

/// Renews the lease over the version we last wrote; when someone else wrote it since (a
/// conflict), reads it, and keeps renewing only while it is still ours.
async fn renew(api: &Api<Lease>, holder: &str, confirmed: &Shared) -> Renewal {
    let mut lease = confirmed.lock().expect("lease state").lease.clone();
    let name = lease.metadata.name.clone().unwrap_or_default();
    let acquired = lease.spec.as_ref().and_then(|s| s.acquire_time.clone());
    lease.spec = Some(spec(holder, acquired));
    match api.replace(&name, &PostParams::default(), &lease).await {
        Ok(written) => {
            *confirmed.lock().expect("lease state") = Confirmed::now(written);
            Renewal::Renewed
        }
        Err(kube::Error::Api(s)) if s.code == 409 || s.code == 404 => {
            match api.get_opt(&name).await {
                Ok(Some(current)) if holder_of(&current) == Some(holder) => {
                    // Still ours (a renewal whose answer was lost): the next try writes over it.
                    confirmed.lock().expect("lease state").lease = current;
                    Renewal::TryAgain
                }
                Ok(other) => Renewal::Lost(taker(other.as_ref())),
                Err(_) => Renewal::TryAgain,
            }
        }
        Err(_) => Renewal::TryAgain,
    }
}

impl DeployLease {
    fn stopped(&self, state: &State) -> Option<DeployError> {
        match state {
            State::Held => None,
            State::Lost(to) => Some(DeployError::LeaseLost {
                app: self.app.clone(),
                holder: to.clone(),
            }),
            State::Unrenewed(failing) => Some(DeployError::LeaseUnrenewed {
                app: self.app.clone(),
                failing: *failing,
            }),
        }
    }

    /// Fails when the lease is no longer ours: called before each write of the deploy. Reads
    /// the lease unless it was shown ours within [`TRUST_FOR`].
    pub async fn ensure_held(&self) -> Result<(), DeployError> {
        if let Some(e) = self.stopped(&self.state.borrow()) {
            return Err(e);
        }
        if self.confirmed.lock().expect("lease state").recent() {
            return Ok(());
        }
        let current = self
            .api
            .get_opt(&self.name)
            .await
            .map_err(api_err(format!("read the deploy lease of `{}`", self.app)))?;
        match current {
            Some(lease) if holder_of(&lease) == Some(self.holder.as_str()) => {
                *self.confirmed.lock().expect("lease state") = Confirmed::now(lease);
                Ok(())
            }
            other => Err(DeployError::LeaseLost {
                app: self.app.clone(),
                holder: taker(other.as_ref()),
            }),
        }
    }

    /// Ends when the lease is lost or could not be renewed for nearly its duration: the deploy
    /// runs against it, so that it stops then even while it only waits.
    pub async fn lost(&self) -> DeployError {
        let mut state = self.state.clone();
        loop {
            if let Some(e) = self.stopped(&state.borrow_and_update()) {
                return e;
            }
            if state.changed().await.is_err() {
                // The renewal ended without a word: it was stopped, so this never ends.
                return std::future::pending().await;
            }
        }
    }

    /// Gives the lease back so the next deploy need not wait for it to expire: only if it is
    /// still ours, and after a renewal in flight has landed (it would change the version the
    /// delete is conditional on).
    pub async fn release(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.renewal).await;
        // Over the version we last wrote, without reading it first; anything else (someone
        // wrote it since) is decided by reading it.
        let last = self.confirmed.lock().expect("lease state").lease.clone();
        let params = DeleteParams {
            preconditions: Some(Preconditions {
                uid: last.metadata.uid.clone(),
                resource_version: last.metadata.resource_version.clone(),
            }),
            ..DeleteParams::default()
        };
        match self.api.delete(&self.name, &params).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(_) => delete_if_ours(&self.api, &self.name, &self.holder).await,
        }
    }
}

/// Deletes the lease if `holder` holds it, conditional on the uid and resourceVersion read: a
/// lease another deploy took in between is left alone.
async fn delete_if_ours(api: &Api<Lease>, name: &str, holder: &str) {
    if let Ok(Some(lease)) = api.get_opt(name).await
        && holder_of(&lease) == Some(holder)
    {
        let params = DeleteParams {
            preconditions: Some(Preconditions {
                uid: lease.metadata.uid.clone(),
                resource_version: lease.metadata.resource_version.clone(),
            }),
            ..DeleteParams::default()
        };
        let _ = api.delete(name, &params).await;
    }
}

/// Gives back a lease this holder took, after the deploy that held it was interrupted.
pub async fn release_if_held(client: &kube::Client, namespace: &str, app: &str, holder: &str) {
    let api: Api<Lease> = Api::namespaced(client.clone(), namespace);
    delete_if_ours(&api, &lease_name(app), holder).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_holder_names_user_host_and_run() {
        let a = holder_identity("alice@laptop");
        assert!(a.starts_with("alice@laptop (run "), "{a}");
        assert_eq!(a.len(), "alice@laptop (run 0123abcd)".len(), "{a}");
        assert_eq!(a, holder_identity("alice@laptop"), "one id per run");
        assert!(!host_name().is_empty());
    }

    fn lease(version: &str, renewed: Timestamp) -> Lease {
        Lease {
            metadata: ObjectMeta {
                resource_version: Some(version.into()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                renew_time: Some(MicroTime(renewed)),
                lease_duration_seconds: Some(30),
                ..LeaseSpec::default()
            }),
        }
    }

    /// Expiry is what we saw, never the holder's clock against ours.
    #[test]
    fn a_lease_expires_only_when_seen_unchanged_for_its_duration() {
        let now = Timestamp::now();
        let secs = |s: i64| SignedDuration::from_secs(s);
        // Only a first look: a lease renewed by a clock 25 s behind ours, or ahead, looks
        // expired or not, and either way is never taken on that look alone.
        assert!(looks_expired(&lease("1", now - secs(31)), now));
        assert!(!looks_expired(&lease("1", now - secs(25)), now));
        assert!(!looks_expired(&lease("1", now + secs(25)), now));
        let start = Instant::now();
        let watch = Watch::new(&lease("1", now - secs(3600)), start);
        let at = |s: u64| start + Duration::from_secs(s);
        let cases = [
            ("1", 0, Verdict::Wait),
            ("1", 29, Verdict::Wait),
            ("2", 29, Verdict::Alive),
            ("2", 31, Verdict::Alive),
            ("1", 30, Verdict::Expired),
        ];
        for (version, after, verdict) in cases {
            assert_eq!(
                watch.judge(&lease(version, now - secs(3600)), at(after)),
                verdict,
                "version {version} after {after}s"
            );
        }
    }
}

/// Release racing a renewal in flight (#27 M5), against a stand-in API server that serves one
/// Lease the way the real one does (resourceVersions, a conditional delete) and lets the test
/// hold a renewal's write on the wire. A real API server cannot be made to hold one write while
/// another request passes it; this is the one place a stand-in is needed.
#[cfg(test)]
mod release_race {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use http_body_util::BodyExt;
    use k8s_openapi::api::coordination::v1::Lease;
    use tokio::sync::Notify;

    #[derive(Default)]
    struct Server {
        lease: Option<Lease>,
        version: u64,
        /// A renewal's write that arrived and has not landed yet.
        held: Option<Lease>,
        /// Delete preconditions the server refused.
        refused_deletes: usize,
    }

    impl Server {
        fn store(&mut self, mut lease: Lease) {
            self.version += 1;
            lease.metadata.resource_version = Some(self.version.to_string());
            lease.metadata.uid = Some("uid-1".into());
            self.lease = Some(lease);
        }

        /// Lands a held write: it reached the server while something else was read.
        fn land_held(&mut self) {
            if let Some(lease) = self.held.take() {
                self.store(lease);
            }
        }
    }

    fn reply(
        code: u16,
        body: &serde_json::Value,
    ) -> http::Response<http_body_util::Full<bytes::Bytes>> {
        http::Response::builder()
            .status(code)
            .header("content-type", "application/json")
            .body(http_body_util::Full::new(bytes::Bytes::from(
                body.to_string(),
            )))
            .unwrap()
    }

    fn status(code: u16, reason: &str) -> http::Response<http_body_util::Full<bytes::Bytes>> {
        reply(
            code,
            &serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                "reason": reason, "message": reason, "code": code}),
        )
    }

    fn lease_reply(lease: &Lease) -> http::Response<http_body_util::Full<bytes::Bytes>> {
        let mut json = serde_json::to_value(lease).unwrap();
        json["apiVersion"] = "coordination.k8s.io/v1".into();
        json["kind"] = "Lease".into();
        reply(200, &json)
    }

    /// Serves the lease; a PUT (a renewal) is held until a read passes it or 2 s go by, and
    /// `renewing` is told when one arrives.
    async fn serve(
        server: Arc<Mutex<Server>>,
        renewing: Arc<Notify>,
        passed: Arc<Notify>,
        req: http::Request<kube::client::Body>,
    ) -> Result<http::Response<http_body_util::Full<bytes::Bytes>>, std::convert::Infallible> {
        let method = req.method().clone();
        let body = req.into_body().collect().await.unwrap().to_bytes();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        match method.as_str() {
            "POST" => {
                let mut s = server.lock().unwrap();
                if s.lease.is_some() {
                    return Ok(status(409, "AlreadyExists"));
                }
                s.store(serde_json::from_value(json).unwrap());
                let mut r = lease_reply(s.lease.as_ref().unwrap());
                *r.status_mut() = http::StatusCode::CREATED;
                Ok(r)
            }
            "GET" => {
                let mut s = server.lock().unwrap();
                // The reader gets what is stored now; a held write lands just after.
                let seen = s.lease.clone();
                if s.held.is_some() {
                    s.land_held();
                    passed.notify_one();
                }
                Ok(match seen {
                    Some(lease) => lease_reply(&lease),
                    None => status(404, "NotFound"),
                })
            }
            "PUT" => {
                let lease: Lease = serde_json::from_value(json).unwrap();
                {
                    let mut s = server.lock().unwrap();
                    if s.lease
                        .as_ref()
                        .and_then(|l| l.metadata.resource_version.clone())
                        != lease.metadata.resource_version
                    {
                        return Ok(status(409, "Conflict"));
                    }
                    s.held = Some(lease);
                }
                renewing.notify_one();
                let _ = tokio::time::timeout(Duration::from_secs(2), passed.notified()).await;
                let mut s = server.lock().unwrap();
                s.land_held();
                Ok(match &s.lease {
                    Some(lease) => lease_reply(lease),
                    None => status(404, "NotFound"),
                })
            }
            "DELETE" => {
                let mut s = server.lock().unwrap();
                let wanted = json["preconditions"]["resourceVersion"]
                    .as_str()
                    .map(String::from);
                let stored = s
                    .lease
                    .as_ref()
                    .and_then(|l| l.metadata.resource_version.clone());
                match (&s.lease, wanted) {
                    (None, _) => Ok(status(404, "NotFound")),
                    (Some(_), Some(w)) if Some(w.clone()) != stored => {
                        s.refused_deletes += 1;
                        Ok(status(409, "Conflict"))
                    }
                    (Some(_), _) => {
                        s.lease = None;
                        Ok(reply(
                            200,
                            &serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Success"}),
                        ))
                    }
                }
            }
            other => panic!("the lease code sent {other}"),
        }
    }

    struct Quiet;
    impl crate::Reporter for Quiet {
        fn step(&self, _: &str) {}
        fn progress(&self, _: &str) {}
        fn log(&self, _: &str) {}
        fn warn(&self, _: &str) {}
        fn note(&self, _: &str) {}
    }

    /// Release while a renewal's write is on its way: the release waits for it to land, then
    /// deletes the lease over the version it made. Released without waiting, the delete was
    /// conditional on the version before the renewal and was refused (409, ignored), and the
    /// lease stayed "held" for 30 s, so the next deploy failed with `Locked`.
    #[tokio::test(start_paused = true)]
    async fn release_waits_for_a_renewal_in_flight_and_the_lease_is_gone() {
        let server = Arc::new(Mutex::new(Server::default()));
        let (renewing, passed) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
        let service = {
            let (server, renewing, passed) = (server.clone(), renewing.clone(), passed.clone());
            tower::service_fn(move |req| {
                serve(server.clone(), renewing.clone(), passed.clone(), req)
            })
        };
        let client = kube::Client::new(service, "default");
        let lease = super::acquire(&client, "default", "blog", "me@here-1", &Quiet)
            .await
            .unwrap();
        assert_eq!(server.lock().unwrap().version, 1);
        renewing.notified().await;
        lease.release().await;
        let s = server.lock().unwrap();
        assert_eq!(s.version, 2, "the renewal landed");
        assert_eq!(
            s.refused_deletes, 0,
            "the delete was over the version the renewal made"
        );
        assert!(s.lease.is_none(), "the lease is gone: {:?}", s.lease);
    }
}
