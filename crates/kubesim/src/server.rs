//! HTTP: routes requests to discovery, the store, watches and the control
//! API, applying injected faults first. hyper 1 directly, HTTP/1.1.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use crate::patch;
use crate::protobuf;
use crate::rbac::{self, User};
use crate::registry::{Registry, ResourceId};
use crate::review;
use crate::scale;
use crate::shared::{ResponseBody, Shared};
use crate::status::Status;
use crate::store::{DeleteOptions, Deletion, EventKind, Filter, Object, Origin, Scope};
use crate::table;

/// Largest request body accepted.
const MAX_BODY: usize = 64 << 20;

type Resp = Response<ResponseBody>;

fn respond(code: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Resp {
    let mut r = Response::new(ResponseBody::Full(Full::new(body.into())));
    *r.status_mut() = code;
    if let Ok(v) = HeaderValue::from_str(content_type) {
        r.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    r
}

fn json_response(code: StatusCode, v: &Value) -> Resp {
    respond(
        code,
        "application/json",
        serde_json::to_vec(v).unwrap_or_default(),
    )
}

fn status_response(s: &Status) -> Resp {
    let code = StatusCode::from_u16(s.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut r = json_response(code, &s.to_json());
    if let Some(secs) = s.retry_after {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    r
}

fn object_response(code: StatusCode, o: &Object) -> Resp {
    respond(code, "application/json", o.json.clone())
}

/// What a path names.
enum Target {
    Version,
    Health,
    CoreVersions,
    Groups,
    Group(String),
    Resources(String, String),
    Resource {
        id: ResourceId,
        namespace: Option<String>,
        name: Option<String>,
        sub: Option<String>,
    },
}

fn parse_target(registry: &Registry, path: &str) -> Option<Target> {
    let segs: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let (group, version, rest) = match segs.as_slice() {
        ["version"] => return Some(Target::Version),
        ["healthz" | "readyz" | "livez", ..] => return Some(Target::Health),
        ["api"] => return Some(Target::CoreVersions),
        ["apis"] => return Some(Target::Groups),
        ["apis", g] => return Some(Target::Group((*g).to_owned())),
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return None,
    };
    if rest.is_empty() {
        return Some(Target::Resources(group.to_owned(), version.to_owned()));
    }
    let namespaced = rest[0] == "namespaces"
        && rest.len() >= 3
        && registry
            .find(group, version, rest[2])
            .is_some_and(|id| registry.get(id).namespaced);
    // `namespaces/NS/KIND` of a kind kubesim does not serve is an unknown
    // resource (404, as upstream), not a subresource of the Namespace.
    if rest[0] == "namespaces" && rest.len() >= 3 && !namespaced {
        let of_namespace = registry
            .find("", version, "namespaces")
            .map(|id| registry.get(id))
            .is_some_and(|r| {
                (rest[2] == "status" && r.status)
                    || rest[2] == "finalize"
                    || r.subresources.iter().any(|s| s.name == rest[2])
            });
        if !of_namespace {
            return None;
        }
    }
    let (namespace, rest) = if namespaced {
        (Some(rest[1].to_owned()), &rest[2..])
    } else {
        (None, rest)
    };
    let id = registry.find(group, version, rest[0])?;
    if rest.len() > 3 {
        return None;
    }
    Some(Target::Resource {
        id,
        namespace,
        name: rest.get(1).map(|s| (*s).to_owned()),
        sub: rest.get(2).map(|s| (*s).to_owned()),
    })
}

fn query_map(query: Option<&str>) -> HashMap<String, String> {
    form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

fn is_true(q: &HashMap<String, String>, key: &str) -> bool {
    q.get(key).is_some_and(|v| v == "true" || v == "1")
}

/// The Kubernetes verb and counted resource of a request (`pods`,
/// `nodes/status`, `leases.coordination.k8s.io`), from its RBAC
/// attributes; a path that names no served resource counts under its
/// method and path.
fn classify(
    attributes: &rbac::Request,
    served: bool,
    method: &Method,
    path: &str,
) -> (String, String) {
    let method = method.as_str().to_ascii_lowercase();
    match attributes {
        rbac::Request::Resource {
            verb,
            group,
            resource,
            subresource,
            ..
        } if served => {
            let mut counted = resource.clone();
            if !group.is_empty() {
                counted = format!("{resource}.{group}");
            }
            if !subresource.is_empty() {
                counted = format!("{counted}/{subresource}");
            }
            let verb = if verb.is_empty() {
                method
            } else {
                verb.clone()
            };
            (verb, counted)
        }
        _ => (method, path.to_owned()),
    }
}

/// The connection is closed without an answer ([`Failure::Cut`]): hyper
/// drops a connection whose service fails.
#[derive(Debug, thiserror::Error)]
#[error("kubesim: injected cut, the connection is closed without an answer")]
pub(crate) struct Cut;

/// Serves one request.
pub(crate) async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Result<Resp, Cut> {
    let path = req.uri().path().to_owned();
    let q = query_map(req.uri().query());
    if let Some(control) = path.strip_prefix("/kubesim/") {
        let control = control.to_owned();
        return Ok(match read_body(req).await {
            Ok((_, body)) => {
                crate::control::handle(&shared, req_method_of(&control), &control, &q, &body)
                    .unwrap_or_else(|s| status_response(&s))
            }
            Err(s) => status_response(&s),
        });
    }
    let target = parse_target(&shared.registry, &path);
    let attributes = rbac::Request::from_http(req.method().as_str(), &path, &q);
    let served = matches!(target, Some(Target::Resource { .. }));
    let (verb, resource) = classify(&attributes, served, req.method(), &path);
    let agent = req
        .headers()
        .get(http::header::USER_AGENT)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    let decision = shared.faults().admit(&agent, &verb, &resource);
    if !decision.delay.is_zero() {
        tokio::time::sleep(decision.delay).await;
    }
    if decision.cut {
        return Err(Cut);
    }
    if let Some(s) = decision.fail {
        return Ok(status_response(&s));
    }
    let user = match shared.authenticate(req.headers()) {
        Ok(user) => user,
        Err(s) => return Ok(status_response(&s)),
    };
    if shared.authorize(&user, &attributes).is_none() {
        return Ok(status_response(&rbac::forbidden(&user, &attributes)));
    }
    let Some(target) = target else {
        return Ok(status_response(&Status::no_route(&path)));
    };
    if decision.expire_watch {
        return Ok(error_watch(&Status::expired(
            "too old resource version: kubesim was told to expire this watch",
        )));
    }
    Ok(serve(&shared, req, target, &path, (&q, &user))
        .await
        .unwrap_or_else(|s| status_response(&s)))
}

// The control API takes its verb from the path, so any method works from curl.
fn req_method_of(_path: &str) -> Method {
    Method::POST
}

async fn read_body(req: Request<Incoming>) -> Result<(http::request::Parts, Bytes), Status> {
    let (parts, body) = req.into_parts();
    let bytes = Limited::new(body, MAX_BODY)
        .collect()
        .await
        .map_err(|e| Status::bad_request(format!("failed to read the request body: {e}")))?
        .to_bytes();
    Ok((parts, bytes))
}

/// A POST or PUT body: Kubernetes protobuf (typed clients such as
/// kubectl's `create` generators) or JSON.
fn parse_object(parts: &http::request::Parts, body: &[u8]) -> Result<Value, Status> {
    if !protobuf::is_protobuf(content_type(parts)) {
        return parse_json(body);
    }
    protobuf::decode_object(body).map_err(|e| match e {
        protobuf::Error::Magic | protobuf::Error::Malformed { .. } => {
            Status::bad_request(format!("failed to decode the protobuf request body: {e}"))
        }
        protobuf::Error::UnknownKind { .. }
        | protobuf::Error::UnknownField { .. }
        | protobuf::Error::Envelope(_) => Status::unsupported(e.to_string()),
    })
}

fn parse_json(body: &[u8]) -> Result<Value, Status> {
    serde_json::from_slice(body)
        .map_err(|e| Status::bad_request(format!("failed to decode the request body as JSON: {e}")))
}

/// The request's `Content-Type`, empty when absent or not text.
fn content_type(parts: &http::request::Parts) -> &str {
    parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

/// The patch kind a PATCH request's `Content-Type` names.
fn patch_kind(parts: &http::request::Parts) -> Result<patch::Kind, Status> {
    let ct = content_type(parts);
    patch::Kind::from_content_type(ct).ok_or_else(|| Status::unsupported_media_type(ct))
}

/// A PATCH body: YAML or JSON for server-side apply, JSON otherwise.
fn parse_patch(kind: patch::Kind, body: &[u8]) -> Result<Value, Status> {
    if kind == patch::Kind::Apply {
        parse_apply(body)
    } else {
        parse_json(body)
    }
}

/// Server-side apply bodies are YAML (kubectl) or JSON (kube-rs).
fn parse_apply(body: &[u8]) -> Result<Value, Status> {
    serde_json::from_slice(body).or_else(|_| {
        serde_saphyr::from_slice(body).map_err(|e| {
            Status::bad_request(format!(
                "failed to decode the apply body as YAML or JSON: {e}"
            ))
        })
    })
}

/// The representation a client asked for in `Accept`: the object, a
/// Table (kubectl get), or PartialObjectMetadata (metadata-only clients
/// such as kube-runtime's `metadata_watcher`). The first supported media
/// type wins, as in the apiserver's negotiation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    Full,
    Table,
    Metadata,
}

impl Form {
    fn of(parts: &http::request::Parts) -> Self {
        let accept = parts
            .headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        for t in accept.split(',') {
            if t.contains("g=meta.k8s.io") {
                if t.contains("as=Table") {
                    return Self::Table;
                }
                if t.contains("as=PartialObjectMetadata") {
                    return Self::Metadata;
                }
            } else if t.trim().starts_with("application/json") || t.trim().starts_with("*/*") {
                return Self::Full;
            }
        }
        Self::Full
    }
}

/// An object as `PartialObjectMetadata`.
fn partial(o: &Object) -> Value {
    let v = o.value();
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": v.get("metadata").cloned().unwrap_or_else(|| json!({})),
    })
}

async fn serve(
    shared: &Arc<Shared>,
    req: Request<Incoming>,
    target: Target,
    path: &str,
    (q, user): (&HashMap<String, String>, &User),
) -> Result<Resp, Status> {
    let method = req.method().clone();
    let reg = &shared.registry;
    let get_only = |v: Value| -> Result<Resp, Status> {
        if method == Method::GET {
            Ok(json_response(StatusCode::OK, &v))
        } else {
            Err(Status::method_not_allowed(method.as_str(), path))
        }
    };
    match target {
        Target::Version => get_only(crate::version_json(&shared.options)),
        Target::Health => Ok(respond(StatusCode::OK, "text/plain; charset=utf-8", "ok")),
        Target::CoreVersions => {
            let addr = shared
                .address
                .lock()
                .map(|a| a.to_string())
                .unwrap_or_default();
            get_only(reg.core_versions(&addr))
        }
        Target::Groups => get_only(reg.group_list()),
        Target::Group(g) => get_only(reg.group(&g).ok_or_else(|| Status::no_route(path))?),
        Target::Resources(g, v) => get_only(
            reg.resource_list(&g, &v)
                .ok_or_else(|| Status::no_route(path))?,
        ),
        Target::Resource {
            id,
            namespace,
            name,
            sub,
        } => {
            let (parts, body) = read_body(req).await?;
            if q.contains_key("dryRun") {
                return Err(Status::bad_request(
                    "kubesim does not support dryRun: drop the dry-run flag",
                ));
            }
            let r = reg.get(id).clone();
            let ns = namespace.clone().unwrap_or_default();
            if r.review {
                return match (method.as_str(), name) {
                    ("POST", None) => Ok(json_response(
                        StatusCode::CREATED,
                        &review::answer(&r, parse_object(&parts, &body)?, user, |asked| {
                            shared.authorize(user, asked)
                        })?,
                    )),
                    (m, _) => Err(Status::method_not_allowed(m, path)),
                };
            }
            match (method.as_str(), name, sub.as_deref()) {
                ("GET", None, None) => {
                    let filter = Filter::new(
                        &r,
                        namespace,
                        q.get("labelSelector").map(String::as_str),
                        q.get("fieldSelector").map(String::as_str),
                    )?;
                    if is_true(q, "watch") {
                        return start_watch(shared, id, filter, q, Form::of(&parts));
                    }
                    let limit = q
                        .get("limit")
                        .map(|l| {
                            l.parse::<usize>().map_err(|_| {
                                Status::bad_request(format!(
                                    "limit must be a positive integer, got {l:?}"
                                ))
                            })
                        })
                        .transpose()?;
                    let page = shared.store().list(
                        id,
                        &filter,
                        limit,
                        q.get("continue")
                            .map(String::as_str)
                            .filter(|c| !c.is_empty()),
                    )?;
                    match Form::of(&parts) {
                        Form::Table => {
                            let t = table::list(&r, &page, include_object(q));
                            return Ok(json_response(StatusCode::OK, &t));
                        }
                        Form::Metadata => {
                            let items: Vec<Value> = page.items.iter().map(|o| partial(o)).collect();
                            let mut meta = json!({"resourceVersion": page.rv.to_string()});
                            if let Some(c) = &page.continue_token {
                                meta["continue"] = c.clone().into();
                            }
                            let list = json!({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": meta, "items": items});
                            return Ok(json_response(StatusCode::OK, &list));
                        }
                        Form::Full => {}
                    }
                    Ok(respond(
                        StatusCode::OK,
                        "application/json",
                        list_bytes(&r, &page),
                    ))
                }
                ("GET", Some(n), Some(crate::registry::SCALE)) if r.has_scale() => {
                    let o = shared.store().get(id, &ns, &n)?;
                    Ok(json_response(StatusCode::OK, &scale::of(&o.value())))
                }
                ("PUT", Some(n), Some(crate::registry::SCALE)) if r.has_scale() => {
                    let body = parse_object(&parts, &body)?;
                    let v = scale::update(&mut shared.store(), id, (&ns, &n), &body)?;
                    Ok(json_response(StatusCode::OK, &v))
                }
                ("PATCH", Some(n), Some(crate::registry::SCALE)) if r.has_scale() => {
                    let kind = patch_kind(&parts)?;
                    let body = parse_patch(kind, &body)?;
                    let v = scale::patch(&mut shared.store(), id, (&ns, &n), kind, &body)?;
                    Ok(json_response(StatusCode::OK, &v))
                }
                ("GET", Some(n), Some("log")) if r.group.is_empty() && r.plural == "pods" => {
                    let pod = shared.store().get(id, &ns, &n)?.value();
                    let tail = q.get("tailLines").and_then(|t| t.parse().ok());
                    let text = shared.logs().read(
                        &pod,
                        q.get("container").map(String::as_str),
                        is_true(q, "previous"),
                        tail,
                    )?;
                    Ok(respond(StatusCode::OK, "text/plain", text))
                }
                ("GET", Some(n), None | Some("status")) => {
                    let o = shared.store().get(id, &ns, &n)?;
                    match Form::of(&parts) {
                        Form::Table => Ok(json_response(
                            StatusCode::OK,
                            &table::single(&r, &o, include_object(q)),
                        )),
                        Form::Metadata => Ok(json_response(StatusCode::OK, &partial(&o))),
                        Form::Full => Ok(object_response(StatusCode::OK, &o)),
                    }
                }
                ("POST", None, None) => {
                    let mut object = parse_object(&parts, &body)?;
                    shared.admit_new(id, &ns, &mut object);
                    let o = shared
                        .store()
                        .create(id, namespace.as_deref(), object, Origin::Api)?;
                    Ok(object_response(StatusCode::CREATED, &o))
                }
                ("POST", Some(n), Some("eviction")) if r.plural == "pods" && r.group.is_empty() => {
                    let v = parse_object(&parts, &body)?;
                    let opts = match v.get("deleteOptions") {
                        Some(d) => DeleteOptions::parse(d.to_string().as_bytes(), None)?,
                        None => DeleteOptions::default(),
                    };
                    let outcome = shared.store().evict(&ns, &n, &opts)?;
                    after_delete(shared, id, &outcome);
                    Ok(json_response(
                        StatusCode::CREATED,
                        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
                    ))
                }
                ("POST", Some(n), Some("binding")) if r.plural == "pods" && r.group.is_empty() => {
                    shared
                        .store()
                        .bind(&ns, &n, &parse_object(&parts, &body)?)?;
                    Ok(json_response(
                        StatusCode::CREATED,
                        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
                    ))
                }
                ("PUT", Some(n), s @ (None | Some("status"))) => {
                    let scope = if s.is_some() {
                        Scope::Status
                    } else {
                        Scope::Main
                    };
                    let o = shared.store().update(
                        id,
                        &ns,
                        &n,
                        parse_object(&parts, &body)?,
                        scope,
                        Origin::Api,
                    )?;
                    Ok(object_response(StatusCode::OK, &o))
                }
                ("PATCH", Some(n), s @ (None | Some("status"))) => {
                    let kind = patch_kind(&parts)?;
                    let scope = if s.is_some() {
                        Scope::Status
                    } else {
                        Scope::Main
                    };
                    let body = parse_patch(kind, &body)?;
                    let o = shared
                        .store()
                        .patch(id, &ns, &n, kind, &body, scope, Origin::Api)?;
                    Ok(object_response(StatusCode::OK, &o))
                }
                ("DELETE", Some(n), None) => {
                    let opts = DeleteOptions::parse(
                        &body,
                        q.get("gracePeriodSeconds").map(String::as_str),
                    )?;
                    let outcome = shared.store().delete(id, &ns, &n, &opts)?;
                    after_delete(shared, id, &outcome);
                    let (Deletion::Gone(o) | Deletion::Pending { object: o, .. }) = &outcome;
                    let code = if matches!(outcome, Deletion::Gone(_)) {
                        StatusCode::OK
                    } else {
                        StatusCode::ACCEPTED
                    };
                    Ok(object_response(code, o))
                }
                ("DELETE", None, None) => {
                    let opts = DeleteOptions::parse(
                        &body,
                        q.get("gracePeriodSeconds").map(String::as_str),
                    )?;
                    let filter = Filter::new(
                        &r,
                        namespace,
                        q.get("labelSelector").map(String::as_str),
                        q.get("fieldSelector").map(String::as_str),
                    )?;
                    let mut store = shared.store();
                    let page = store.list(id, &filter, None, None)?;
                    let mut outcomes = Vec::new();
                    for o in &page.items {
                        if let Ok(d) = store.delete(id, &o.namespace, &o.name, &opts) {
                            outcomes.push(d);
                        }
                    }
                    let rv = store.rv();
                    drop(store);
                    let items: Vec<Arc<Object>> = outcomes
                        .iter()
                        .map(|d| {
                            after_delete(shared, id, d);
                            match d {
                                Deletion::Gone(o) | Deletion::Pending { object: o, .. } => {
                                    o.clone()
                                }
                            }
                        })
                        .collect();
                    let page = crate::store::Page {
                        rv,
                        items,
                        continue_token: None,
                        remaining: None,
                    };
                    Ok(respond(
                        StatusCode::OK,
                        "application/json",
                        list_bytes(&r, &page),
                    ))
                }
                (m, _, _) => Err(Status::method_not_allowed(m, path)),
            }
        }
    }
}

fn include_object(q: &HashMap<String, String>) -> table::Include {
    match q.get("includeObject").map(String::as_str) {
        Some("None") => table::Include::None,
        Some("Object") => table::Include::Object,
        _ => table::Include::Metadata,
    }
}

fn after_delete(shared: &Arc<Shared>, id: ResourceId, outcome: &Deletion) {
    if let Deletion::Pending {
        object,
        grace: Some(g),
    } = outcome
    {
        shared.schedule_termination(id, object, *g);
    }
}

/// `{"kind":"PodList",...,"items":[...]}` from stored bytes, without
/// parsing the items.
pub(crate) fn list_bytes(r: &crate::registry::Resource, page: &crate::store::Page) -> Bytes {
    let mut meta = json!({"resourceVersion": page.rv.to_string()});
    if let Some(c) = &page.continue_token {
        meta["continue"] = c.clone().into();
    }
    if let Some(n) = page.remaining {
        meta["remainingItemCount"] = n.into();
    }
    let head = format!(
        "{{\"kind\":\"{}List\",\"apiVersion\":\"{}\",\"metadata\":{},\"items\":[",
        r.kind,
        r.api_version(),
        meta
    );
    let size = head.len() + page.items.iter().map(|o| o.json.len() + 1).sum::<usize>() + 2;
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(head.as_bytes());
    for (i, o) in page.items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(&o.json);
    }
    out.extend_from_slice(b"]}");
    Bytes::from(out)
}

fn event_line(kind: &str, object: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(object.len() + 32);
    out.extend_from_slice(b"{\"type\":\"");
    out.extend_from_slice(kind.as_bytes());
    out.extend_from_slice(b"\",\"object\":");
    out.extend_from_slice(object);
    out.extend_from_slice(b"}\n");
    Bytes::from(out)
}

fn bookmark(r: &crate::registry::Resource, rv: u64, initial_end: bool) -> Bytes {
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if initial_end {
        meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    let o = json!({"kind": r.kind, "apiVersion": r.api_version(), "metadata": meta});
    event_line("BOOKMARK", o.to_string().as_bytes())
}

fn start_watch(
    shared: &Arc<Shared>,
    id: ResourceId,
    filter: Filter,
    q: &HashMap<String, String>,
    form: Form,
) -> Result<Resp, Status> {
    let r = shared.registry.get(id).clone();
    let since = match q.get("resourceVersion").map(String::as_str) {
        None | Some("" | "0") => None,
        Some(v) => Some(v.parse::<u64>().map_err(|_| {
            Status::bad_request(format!("resourceVersion must be a number, got {v:?}"))
        })?),
    };
    let send_initial = is_true(q, "sendInitialEvents");
    let bookmarks = is_true(q, "allowWatchBookmarks");
    let timeout = q
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map_or(shared.options.watch_timeout, Duration::from_secs);
    let since = if send_initial { None } else { since };
    let watched = shared.store().watch(id, &filter, since);
    let crate::store::Watch {
        backlog,
        receiver: mut rx,
        rv: start_rv,
    } = match watched {
        Ok(w) => w,
        // The apiserver reports errors found after the watch was accepted
        // (a compacted resourceVersion) as an ERROR event, not an HTTP error.
        Err(s) if s.code == 410 => return Ok(error_watch(&s)),
        Err(s) => return Err(s),
    };
    let (tx, body_rx) = mpsc::channel::<Bytes>(256);
    // A view (events.k8s.io) watches its stored resource's events.
    let registry = shared.registry.clone();
    let stored_id = registry.backing(id);
    let stored_r = registry.get(stored_id).clone();
    let filter = filter.to_backing(&registry, id);
    let mut cut = shared.cut.subscribe();
    let current = shared.rv.clone();
    let interval = shared.options.bookmark_interval;
    tokio::spawn(async move {
        let render = |kind: EventKind, o: &Object, first: &mut bool| -> Bytes {
            match form {
                Form::Table => {
                    let t = table::single(&r, o, table::Include::Metadata);
                    let t = if *first { t } else { table::without_columns(t) };
                    *first = false;
                    event_line(kind.as_str(), t.to_string().as_bytes())
                }
                Form::Metadata => event_line(kind.as_str(), partial(o).to_string().as_bytes()),
                Form::Full => event_line(kind.as_str(), &o.json),
            }
        };
        let live = |kind: EventKind, o: &Arc<Object>, first: &mut bool| -> Bytes {
            render(kind, &crate::store::present(&registry, id, o), first)
        };
        let mut first = true;
        for (kind, o) in &backlog {
            if tx.send(render(*kind, o, &mut first)).await.is_err() {
                return;
            }
        }
        drop(backlog);
        if send_initial && tx.send(bookmark(&r, start_rv, true)).await.is_err() {
            return;
        }
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut tick = tokio::time::interval(interval);
        tick.tick().await;
        loop {
            tokio::select! {
                ev = rx.recv() => match ev {
                    Ok(ev) => {
                        if ev.resource != stored_id || ev.rv <= start_rv {
                            continue;
                        }
                        if let Some((kind, o)) = filter.view(&stored_r, &ev)
                            && tx.send(live(kind, &o, &mut first)).await.is_err()
                        {
                            return;
                        }
                    }
                    // A watcher too slow to keep up is closed; the client re-watches.
                    Err(broadcast::error::RecvError::Lagged(_) | broadcast::error::RecvError::Closed) => return,
                },
                _ = tick.tick(), if bookmarks => {
                    if drain_then_bookmark(&mut rx, &tx, &current, (stored_id, &stored_r, &r), start_rv, &filter, &live, &mut first).await.is_err() {
                        return;
                    }
                }
                () = &mut deadline => {
                    if bookmarks {
                        let _ = drain_then_bookmark(&mut rx, &tx, &current, (stored_id, &stored_r, &r), start_rv, &filter, &live, &mut first).await;
                    }
                    return;
                }
                _ = cut.changed() => return,
                () = tx.closed() => return,
            }
        }
    });
    let mut resp = Response::new(ResponseBody::Stream(body_rx));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(resp)
}

/// A watch response holding one ERROR event.
fn error_watch(s: &Status) -> Resp {
    let line = event_line("ERROR", s.to_json().to_string().as_bytes());
    respond(StatusCode::OK, "application/json", line)
}

/// Sends every event already committed, then a bookmark at the current
/// resourceVersion: a client resuming from it misses nothing.
#[allow(clippy::too_many_arguments)]
async fn drain_then_bookmark(
    rx: &mut broadcast::Receiver<Arc<crate::store::Event>>,
    tx: &mpsc::Sender<Bytes>,
    current: &AtomicU64,
    (stored_id, stored, served): (
        ResourceId,
        &crate::registry::Resource,
        &crate::registry::Resource,
    ),
    start_rv: u64,
    filter: &Filter,
    render: &impl Fn(EventKind, &Arc<Object>, &mut bool) -> Bytes,
    first: &mut bool,
) -> Result<(), ()> {
    let rv = current.load(Ordering::Acquire);
    loop {
        match rx.try_recv() {
            Ok(ev) => {
                if ev.resource != stored_id || ev.rv <= start_rv {
                    continue;
                }
                if let Some((kind, o)) = filter.view(stored, &ev) {
                    tx.send(render(kind, &o, first)).await.map_err(|_| ())?;
                }
            }
            Err(broadcast::error::TryRecvError::Empty) => break,
            Err(_) => return Err(()),
        }
    }
    tx.send(bookmark(served, rv.max(start_rv), false))
        .await
        .map_err(|_| ())
}
