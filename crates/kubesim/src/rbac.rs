//! RBAC authorization, decided as the apiserver's RBAC authorizer decides
//! it: a request's attributes (read from its path, method and query the
//! way the apiserver's request-info resolver reads them) are allowed when
//! some rule of a role bound to the user covers them. RBAC only grants;
//! nothing is denied explicitly, so "forbidden" means no rule matched.
//!
//! Pure: the caller hands in the policy objects it holds and the user the
//! request authenticated as (see [`crate::auth`]).

use std::collections::HashMap;

use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, Subject,
};
use serde_json::{Value, json};

use crate::selector::Labels;
use crate::status::Status;

/// The group every authenticated user is in.
pub const AUTHENTICATED: &str = "system:authenticated";

/// The group whose members may do everything (bound to `cluster-admin`).
pub const MASTERS: &str = "system:masters";

/// Who a request is from, as authentication established it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The user name, e.g. `system:serviceaccount:NS:NAME`.
    pub name: String,
    /// The groups, [`AUTHENTICATED`] included.
    pub groups: Vec<String>,
}

impl User {
    /// A user with `groups` plus [`AUTHENTICATED`].
    pub fn new(name: &str, groups: &[&str]) -> Self {
        let mut groups: Vec<String> = groups.iter().map(|g| (*g).to_owned()).collect();
        if !groups.iter().any(|g| g == AUTHENTICATED) {
            groups.push(AUTHENTICATED.to_owned());
        }
        Self {
            name: name.to_owned(),
            groups,
        }
    }

    /// A ServiceAccount's user, with the groups the apiserver gives it.
    pub fn service_account(namespace: &str, name: &str) -> Self {
        Self::new(
            &format!("system:serviceaccount:{namespace}:{name}"),
            &[
                "system:serviceaccounts",
                &format!("system:serviceaccounts:{namespace}"),
            ],
        )
    }

    /// The `userInfo` of a review.
    pub fn to_json(&self) -> Value {
        json!({"username": self.name, "groups": self.groups})
    }
}

/// What a request asks to do: the attributes RBAC decides on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// An API object or collection.
    Resource {
        /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`,
        /// `deletecollection`.
        verb: String,
        /// The API group, empty for the core group.
        group: String,
        /// The API version (only shown, never matched).
        version: String,
        /// The resource's plural name.
        resource: String,
        /// The subresource (`status`, `eviction`, ...), or empty.
        subresource: String,
        /// The namespace, empty at cluster scope.
        namespace: String,
        /// The object's name, empty for a collection or a create.
        name: String,
    },
    /// Any other path (discovery, `/healthz`, `/version`).
    NonResource {
        /// The lower-case HTTP method.
        verb: String,
        /// The path.
        path: String,
    },
}

impl Request {
    /// The attributes of an HTTP request, read as the apiserver does:
    /// `/api/V/...` and `/apis/G/V/...` with at least a resource are
    /// resource requests, whether or not the resource is served; a GET
    /// without a name is `list` or `watch`, a DELETE without one
    /// `deletecollection`; a `metadata.name=` field selector names the
    /// object of a list or watch.
    pub fn from_http(method: &str, path: &str, query: &HashMap<String, String>) -> Self {
        let non_resource = || Self::NonResource {
            verb: method.to_ascii_lowercase(),
            path: path.to_owned(),
        };
        let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let (group, rest) = match parts.as_slice() {
            ["api", rest @ ..] if rest.len() >= 2 => ("", rest),
            ["apis", group, rest @ ..] if rest.len() >= 2 => (*group, rest),
            _ => return non_resource(),
        };
        let (version, mut rest) = (rest[0], &rest[1..]);
        let mut verb = match rest.first() {
            Some(&"watch") if rest.len() > 1 => {
                rest = &rest[1..];
                "watch"
            }
            _ => match method {
                "POST" => "create",
                "GET" | "HEAD" => "get",
                "PUT" => "update",
                "PATCH" => "patch",
                "DELETE" => "delete",
                _ => "",
            },
        }
        .to_owned();
        let mut namespace = "";
        if rest.first() == Some(&"namespaces") && rest.len() > 1 {
            namespace = rest[1];
            // `namespaces/NS/status|finalize` are the Namespace's own
            // subresources; anything else is a resource in the namespace.
            if rest.len() > 2 && !matches!(rest[2], "status" | "finalize") {
                rest = &rest[2..];
            }
        }
        let at = |i: usize| rest.get(i).copied().unwrap_or_default().to_owned();
        let mut name = at(1);
        if verb == "get" && name.is_empty() {
            let watch = query.get("watch").is_some_and(|w| w == "true" || w == "1");
            verb = if watch { "watch" } else { "list" }.to_owned();
            if let Some(named) = query
                .get("fieldSelector")
                .and_then(|s| exact_name(s))
                .filter(|n| !n.contains('/') && *n != "." && *n != "..")
            {
                name = named.to_owned();
            }
        }
        if verb == "delete" && name.is_empty() {
            verb = "deletecollection".to_owned();
        }
        Self::Resource {
            verb,
            group: group.to_owned(),
            version: version.to_owned(),
            resource: at(0),
            subresource: at(2),
            namespace: namespace.to_owned(),
            name,
        }
    }

    fn verb(&self) -> &str {
        match self {
            Self::Resource { verb, .. } | Self::NonResource { verb, .. } => verb,
        }
    }
}

/// The name a field selector requires exactly (`metadata.name=x` or
/// `metadata.name==x`, alone or among other terms).
fn exact_name(selector: &str) -> Option<&str> {
    selector.split(',').find_map(|term| {
        let (key, value) = term.split_once("==").or_else(|| term.split_once('='))?;
        (key.trim() == "metadata.name" && !key.ends_with('!')).then(|| value.trim())
    })
}

/// The RBAC objects in force.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// ClusterRoles.
    pub cluster_roles: Vec<ClusterRole>,
    /// ClusterRoleBindings.
    pub cluster_role_bindings: Vec<ClusterRoleBinding>,
    /// Roles, each with its namespace.
    pub roles: Vec<Role>,
    /// RoleBindings, each with its namespace.
    pub role_bindings: Vec<RoleBinding>,
}

/// Why a request was allowed, as the apiserver words it, or `None`.
pub fn authorize(policy: &Policy, user: &User, request: &Request) -> Option<String> {
    for binding in &policy.cluster_role_bindings {
        let subjects = binding.subjects.as_deref().unwrap_or_default();
        if binding.role_ref.kind != "ClusterRole" || !subjects.iter().any(|s| applies(s, user, ""))
        {
            continue;
        }
        if policy
            .cluster_role_rules(&binding.role_ref.name)
            .iter()
            .any(|r| allows(r, request))
        {
            return Some(format!(
                "RBAC: allowed by ClusterRoleBinding \"{}\" of ClusterRole \"{}\" to {}",
                name_of(&binding.metadata),
                binding.role_ref.name,
                subject_phrase(user)
            ));
        }
    }
    let Request::Resource { namespace, .. } = request else {
        return None;
    };
    if namespace.is_empty() {
        return None;
    }
    for binding in &policy.role_bindings {
        if binding.metadata.namespace.as_deref() != Some(namespace.as_str()) {
            continue;
        }
        let subjects = binding.subjects.as_deref().unwrap_or_default();
        if !subjects.iter().any(|s| applies(s, user, namespace)) {
            continue;
        }
        let rules = match binding.role_ref.kind.as_str() {
            "ClusterRole" => policy.cluster_role_rules(&binding.role_ref.name),
            "Role" => policy.role_rules(namespace, &binding.role_ref.name),
            _ => Vec::new(),
        };
        if rules.iter().any(|r| allows(r, request)) {
            return Some(format!(
                "RBAC: allowed by RoleBinding \"{}/{namespace}\" of {} \"{}\" to {}",
                name_of(&binding.metadata),
                binding.role_ref.kind,
                binding.role_ref.name,
                subject_phrase(user)
            ));
        }
    }
    None
}

impl Policy {
    /// A ClusterRole's rules, those of the roles it aggregates included.
    fn cluster_role_rules(&self, name: &str) -> Vec<&PolicyRule> {
        let Some(role) = self
            .cluster_roles
            .iter()
            .find(|r| r.metadata.name.as_deref() == Some(name))
        else {
            return Vec::new();
        };
        let mut rules: Vec<&PolicyRule> = role.rules.iter().flatten().collect();
        let selectors = role
            .aggregation_rule
            .as_ref()
            .and_then(|a| a.cluster_role_selectors.as_deref())
            .unwrap_or_default();
        let selectors: Vec<Labels> = selectors
            .iter()
            .filter_map(|s| Labels::from_label_selector(&serde_json::to_value(s).ok()?).ok())
            .collect();
        if selectors.is_empty() {
            return rules;
        }
        for other in &self.cluster_roles {
            if other.metadata.name.as_deref() == Some(name) {
                continue;
            }
            let labels = serde_json::to_value(&other.metadata.labels).unwrap_or(Value::Null);
            if selectors.iter().any(|s| matches(s, &labels)) {
                rules.extend(other.rules.iter().flatten());
            }
        }
        rules
    }

    fn role_rules(&self, namespace: &str, name: &str) -> Vec<&PolicyRule> {
        self.roles
            .iter()
            .find(|r| {
                r.metadata.namespace.as_deref() == Some(namespace)
                    && r.metadata.name.as_deref() == Some(name)
            })
            .map(|r| r.rules.iter().flatten().collect())
            .unwrap_or_default()
    }
}

/// An empty selector selects nothing in an aggregation rule.
fn matches(selector: &Labels, labels: &Value) -> bool {
    !selector.is_empty() && selector.matches_map(labels.as_object())
}

fn name_of(metadata: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> &str {
    metadata.name.as_deref().unwrap_or_default()
}

fn subject_phrase(user: &User) -> String {
    match user.name.strip_prefix("system:serviceaccount:") {
        Some(sa) => format!("ServiceAccount \"{sa}\""),
        None => format!("User \"{}\"", user.name),
    }
}

/// Whether a binding's subject is `user`; `namespace` is a RoleBinding's,
/// the default for its ServiceAccount subjects.
fn applies(subject: &Subject, user: &User, namespace: &str) -> bool {
    match subject.kind.as_str() {
        "User" => subject.name == user.name,
        "Group" => user.groups.contains(&subject.name),
        "ServiceAccount" => {
            let ns = subject.namespace.as_deref().unwrap_or(namespace);
            !ns.is_empty() && user.name == format!("system:serviceaccount:{ns}:{}", subject.name)
        }
        _ => false,
    }
}

/// Whether one rule covers the request.
fn allows(rule: &PolicyRule, request: &Request) -> bool {
    if !has(&rule.verbs, request.verb()) {
        return false;
    }
    match request {
        Request::Resource {
            group,
            resource,
            subresource,
            name,
            ..
        } => {
            let combined = if subresource.is_empty() {
                resource.clone()
            } else {
                format!("{resource}/{subresource}")
            };
            let resources = rule.resources.as_deref().unwrap_or_default();
            rule.api_groups
                .as_deref()
                .is_some_and(|groups| has(groups, group))
                && resources.iter().any(|r| {
                    r == "*"
                        || *r == combined
                        || (!subresource.is_empty() && *r == format!("*/{subresource}"))
                })
                && rule
                    .resource_names
                    .as_deref()
                    .is_none_or(|names| names.is_empty() || names.contains(name))
        }
        Request::NonResource { path, .. } => {
            rule.non_resource_urls.as_deref().is_some_and(|urls| {
                urls.iter().any(|u| match u.strip_suffix('*') {
                    Some(prefix) => path.starts_with(prefix),
                    None => u == path,
                })
            })
        }
    }
}

fn has(list: &[String], item: &str) -> bool {
    list.iter().any(|v| v == "*" || v == item)
}

/// The 403 the apiserver answers for a request no rule allows.
pub fn forbidden(user: &User, request: &Request) -> Status {
    match request {
        Request::Resource {
            verb,
            group,
            resource,
            subresource,
            namespace,
            name,
            ..
        } => {
            let shown = if subresource.is_empty() {
                resource.clone()
            } else {
                format!("{resource}/{subresource}")
            };
            let scope = if namespace.is_empty() {
                "at the cluster scope".to_owned()
            } else {
                format!("in the namespace \"{namespace}\"")
            };
            let why = format!(
                "User \"{}\" cannot {verb} resource \"{shown}\" in API group \"{group}\" {scope}",
                user.name
            );
            let qualified = if group.is_empty() {
                resource.clone()
            } else {
                format!("{resource}.{group}")
            };
            let message = if name.is_empty() {
                format!("{qualified} is forbidden: {why}")
            } else {
                format!("{qualified} \"{name}\" is forbidden: {why}")
            };
            Status::forbidden(message)
                .with_details(json!({"name": name, "group": group, "kind": resource}))
        }
        Request::NonResource { verb, path } => Status::forbidden(format!(
            "forbidden: User \"{}\" cannot {verb} path \"{path}\"",
            user.name
        )),
    }
}

/// The roles and bindings an apiserver creates at start that every test
/// cluster relies on: `cluster-admin` for [`MASTERS`], discovery and self
/// reviews for every authenticated user, health and version for anyone.
pub fn bootstrap() -> Vec<Value> {
    let labels = json!({"kubernetes.io/bootstrapping": "rbac-defaults"});
    let annotations = json!({"rbac.authorization.kubernetes.io/autoupdate": "true"});
    let role = |name: &str, rules: Value| {
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": name, "labels": labels, "annotations": annotations},
            "rules": rules,
        })
    };
    let binding = |name: &str, groups: &[&str]| {
        let subjects: Vec<Value> = groups
            .iter()
            .map(|g| json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": g}))
            .collect();
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": name, "labels": labels, "annotations": annotations},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
            "subjects": subjects,
        })
    };
    let health = ["/healthz", "/livez", "/readyz", "/version", "/version/"];
    vec![
        role(
            "cluster-admin",
            json!([
                {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
                {"nonResourceURLs": ["*"], "verbs": ["*"]},
            ]),
        ),
        binding("cluster-admin", &[MASTERS]),
        role(
            "system:discovery",
            json!([{"nonResourceURLs": [
                "/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez",
                "/openapi", "/openapi/*", "/readyz", "/version", "/version/",
            ], "verbs": ["get"]}]),
        ),
        binding("system:discovery", &[AUTHENTICATED]),
        role(
            "system:basic-user",
            json!([
                {"apiGroups": ["authorization.k8s.io"],
                 "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                 "verbs": ["create"]},
                {"apiGroups": ["authentication.k8s.io"],
                 "resources": ["selfsubjectreviews"], "verbs": ["create"]},
            ]),
        ),
        binding("system:basic-user", &[AUTHENTICATED]),
        role(
            "system:public-info-viewer",
            json!([{"nonResourceURLs": health, "verbs": ["get"]}]),
        ),
        binding(
            "system:public-info-viewer",
            &[AUTHENTICATED, "system:unauthenticated"],
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn resource(
        verb: &str,
        group: &str,
        resource: &str,
        sub: &str,
        ns: &str,
        name: &str,
    ) -> Request {
        Request::Resource {
            verb: verb.into(),
            group: group.into(),
            version: "v1".into(),
            resource: resource.into(),
            subresource: sub.into(),
            namespace: ns.into(),
            name: name.into(),
        }
    }

    fn versioned(mut request: Request, v: &str) -> Request {
        if let Request::Resource { version, .. } = &mut request {
            *version = v.to_owned();
        }
        request
    }

    #[test]
    fn attributes_are_read_as_the_apiserver_reads_them() {
        let none = q(&[]);
        let cases = [
            (
                "GET",
                "/api/v1/nodes",
                &none,
                resource("list", "", "nodes", "", "", ""),
            ),
            (
                "GET",
                "/api/v1/nodes/n1",
                &none,
                resource("get", "", "nodes", "", "", "n1"),
            ),
            (
                "PATCH",
                "/api/v1/nodes/n1/status",
                &none,
                resource("patch", "", "nodes", "status", "", "n1"),
            ),
            (
                "POST",
                "/api/v1/namespaces/d/pods/p/eviction",
                &none,
                resource("create", "", "pods", "eviction", "d", "p"),
            ),
            (
                "POST",
                "/api/v1/namespaces/d/pods",
                &none,
                resource("create", "", "pods", "", "d", ""),
            ),
            (
                "DELETE",
                "/api/v1/namespaces/d/pods",
                &none,
                resource("deletecollection", "", "pods", "", "d", ""),
            ),
            (
                "PUT",
                "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/l",
                &none,
                resource(
                    "update",
                    "coordination.k8s.io",
                    "leases",
                    "",
                    "kube-system",
                    "l",
                ),
            ),
            // The Namespace object is in its own namespace.
            (
                "GET",
                "/api/v1/namespaces/d",
                &none,
                resource("get", "", "namespaces", "", "d", "d"),
            ),
            (
                "PUT",
                "/api/v1/namespaces/d/finalize",
                &none,
                resource("update", "", "namespaces", "finalize", "d", "d"),
            ),
            // Kinds nobody serves are still resource requests.
            (
                "GET",
                "/apis/longhorn.io/v1beta2/volumes",
                &none,
                versioned(
                    resource("list", "longhorn.io", "volumes", "", "", ""),
                    "v1beta2",
                ),
            ),
            (
                "GET",
                "/api/v1/watch/pods",
                &none,
                resource("watch", "", "pods", "", "", ""),
            ),
        ];
        for (method, path, query, want) in cases {
            assert_eq!(
                Request::from_http(method, path, query),
                want,
                "{method} {path}"
            );
        }
        let watch = q(&[("watch", "true"), ("fieldSelector", "metadata.name=n1")]);
        assert_eq!(
            Request::from_http("GET", "/api/v1/nodes", &watch),
            resource("watch", "", "nodes", "", "", "n1")
        );
        let other = q(&[("fieldSelector", "spec.nodeName=n1,metadata.name!=x")]);
        assert_eq!(
            Request::from_http("GET", "/api/v1/pods", &other),
            resource("list", "", "pods", "", "", "")
        );
        for path in ["/api", "/api/v1", "/apis/apps", "/version", "/healthz"] {
            assert_eq!(
                Request::from_http("GET", path, &none),
                Request::NonResource {
                    verb: "get".into(),
                    path: path.into()
                },
                "{path}"
            );
        }
    }

    fn policy(objects: &[Value]) -> Policy {
        let mut p = Policy::default();
        for o in objects {
            match o["kind"].as_str() {
                Some("ClusterRole") => p
                    .cluster_roles
                    .push(serde_json::from_value(o.clone()).unwrap()),
                Some("ClusterRoleBinding") => p
                    .cluster_role_bindings
                    .push(serde_json::from_value(o.clone()).unwrap()),
                Some("Role") => p.roles.push(serde_json::from_value(o.clone()).unwrap()),
                Some("RoleBinding") => p
                    .role_bindings
                    .push(serde_json::from_value(o.clone()).unwrap()),
                _ => panic!("{o}"),
            }
        }
        p
    }

    fn agent() -> User {
        User::service_account("rebootguard", "agent")
    }

    fn agent_policy() -> Policy {
        let mut objects = bootstrap();
        objects.extend([
            json!({"kind": "ClusterRole", "metadata": {"name": "agent"}, "rules": [
                {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "watch", "patch"]},
                {"apiGroups": [""], "resources": ["nodes/status"], "verbs": ["patch"]},
            ]}),
            json!({"kind": "ClusterRoleBinding", "metadata": {"name": "agent"},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "agent"},
                   "subjects": [{"kind": "ServiceAccount", "name": "agent", "namespace": "rebootguard"}]}),
            json!({"kind": "Role", "metadata": {"name": "lease", "namespace": "kube-system"}, "rules": [
                {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
                 "resourceNames": ["the-lock"], "verbs": ["get", "update"]},
            ]}),
            // No namespace on the subject: the RoleBinding's own.
            json!({"kind": "RoleBinding", "metadata": {"name": "lease", "namespace": "kube-system"},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "lease"},
                   "subjects": [{"kind": "ServiceAccount", "name": "agent", "namespace": "rebootguard"}]}),
        ]);
        policy(&objects)
    }

    #[test]
    fn a_grant_covers_exactly_its_verbs_resources_and_names() {
        let p = agent_policy();
        let me = agent();
        let allowed = |r: Request| authorize(&p, &me, &r).is_some();
        assert!(allowed(resource("list", "", "nodes", "", "", "")));
        assert!(allowed(resource("patch", "", "nodes", "status", "", "n1")));
        assert!(!allowed(resource(
            "update", "", "nodes", "status", "", "n1"
        )));
        assert!(!allowed(resource("delete", "", "nodes", "", "", "n1")));
        assert!(!allowed(resource("list", "", "pods", "", "", "")));
        assert!(!allowed(resource("list", "apps", "nodes", "", "", "")));
        assert!(allowed(resource(
            "get",
            "coordination.k8s.io",
            "leases",
            "",
            "kube-system",
            "the-lock"
        )));
        assert!(!allowed(resource(
            "get",
            "coordination.k8s.io",
            "leases",
            "",
            "kube-system",
            "other"
        )));
        assert!(!allowed(resource(
            "list",
            "coordination.k8s.io",
            "leases",
            "",
            "kube-system",
            ""
        )));
        assert!(!allowed(resource(
            "get",
            "coordination.k8s.io",
            "leases",
            "",
            "default",
            "the-lock"
        )));
        // A Role grants nothing at cluster scope.
        assert!(!allowed(resource(
            "get",
            "coordination.k8s.io",
            "leases",
            "",
            "",
            "the-lock"
        )));
        // Bootstrap: discovery and self reviews for anyone authenticated.
        assert!(allowed(Request::NonResource {
            verb: "get".into(),
            path: "/apis/apps/v1".into()
        }));
        assert!(!allowed(Request::NonResource {
            verb: "post".into(),
            path: "/api".into()
        }));
        assert!(allowed(resource(
            "create",
            "authorization.k8s.io",
            "selfsubjectaccessreviews",
            "",
            "",
            ""
        )));
        // Another ServiceAccount of the same name elsewhere is someone else.
        let stranger = User::service_account("default", "agent");
        assert!(authorize(&p, &stranger, &resource("list", "", "nodes", "", "", "")).is_none());
        let admin = User::new("admin", &[MASTERS]);
        let reason = authorize(
            &p,
            &admin,
            &resource("delete", "x.io", "anything", "", "ns", "n"),
        )
        .unwrap();
        assert!(
            reason.contains("ClusterRoleBinding \"cluster-admin\""),
            "{reason}"
        );
    }

    #[test]
    fn wildcards_groups_users_and_aggregation() {
        let p = policy(&[
            json!({"kind": "ClusterRole", "metadata": {"name": "status-reader"}, "rules": [
                {"apiGroups": ["*"], "resources": ["*/status"], "verbs": ["get"]}]}),
            json!({"kind": "ClusterRole", "metadata": {"name": "part", "labels": {"agg": "yes"}}, "rules": [
                {"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}]}),
            json!({"kind": "ClusterRole", "metadata": {"name": "whole"},
                   "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"agg": "yes"}}]}}),
            json!({"kind": "ClusterRoleBinding", "metadata": {"name": "a"},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "status-reader"},
                   "subjects": [{"kind": "Group", "name": "ops"}]}),
            // A ClusterRole bound in one namespace grants only there.
            json!({"kind": "RoleBinding", "metadata": {"name": "b", "namespace": "web"},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "whole"},
                   "subjects": [{"kind": "User", "name": "alice"}]}),
        ]);
        let ops = User::new("bob", &["ops"]);
        assert!(
            authorize(
                &p,
                &ops,
                &resource("get", "apps", "deployments", "status", "x", "d")
            )
            .is_some()
        );
        assert!(
            authorize(
                &p,
                &ops,
                &resource("get", "apps", "deployments", "", "x", "d")
            )
            .is_none()
        );
        let alice = User::new("alice", &[]);
        let reason = authorize(&p, &alice, &resource("list", "", "pods", "", "web", "")).unwrap();
        assert_eq!(
            reason,
            "RBAC: allowed by RoleBinding \"b/web\" of ClusterRole \"whole\" to User \"alice\""
        );
        assert!(authorize(&p, &alice, &resource("list", "", "pods", "", "other", "")).is_none());
        assert!(authorize(&p, &alice, &resource("list", "", "pods", "", "", "")).is_none());
    }

    #[test]
    fn forbidden_says_who_cannot_do_what_where() {
        let me = agent();
        let s = forbidden(&me, &resource("patch", "", "nodes", "status", "", "n1"));
        assert_eq!(s.code, 403);
        assert_eq!(
            s.message,
            "nodes \"n1\" is forbidden: User \"system:serviceaccount:rebootguard:agent\" cannot patch resource \"nodes/status\" in API group \"\" at the cluster scope"
        );
        let s = forbidden(
            &me,
            &resource(
                "list",
                "coordination.k8s.io",
                "leases",
                "",
                "kube-system",
                "",
            ),
        );
        assert_eq!(
            s.message,
            "leases.coordination.k8s.io is forbidden: User \"system:serviceaccount:rebootguard:agent\" cannot list resource \"leases\" in API group \"coordination.k8s.io\" in the namespace \"kube-system\""
        );
        let s = forbidden(
            &me,
            &Request::NonResource {
                verb: "get".into(),
                path: "/metrics".into(),
            },
        );
        assert_eq!(
            s.message,
            "forbidden: User \"system:serviceaccount:rebootguard:agent\" cannot get path \"/metrics\""
        );
    }
}
