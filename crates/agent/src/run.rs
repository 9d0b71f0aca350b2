//! The agent's loop: turn what changes on the node and in the API into
//! checks, feed the [`Machine`], carry its actions out.
//!
//! Sources: inotify on subnet.env's directory, netlink notifications for
//! links, addresses, routes, neighbours and FDB entries, the API watches
//! ([`crate::api`]), a slow timer for a full check and a tick for the
//! machine's own deadlines. Bursts of changes collapse into one check.
//! Every action runs in its own task and reports back as an input, so a
//! slow API, webhook, plugin or k3s restart never stalls detection.

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, ObjectReference};
use kube::runtime::events::{Event as KubeEvent, EventType, Recorder, Reporter};
use kube::{Api, Client};
use rebootguard_cluster::client::Discovery;
use rebootguard_cluster::lease::{Lock, Outcome};
use rebootguard_cluster::reboot::{ACCEPTED, REQUIRED, annotate};
use rebootguard_errors::Failure;
use rebootguard_node::Settings;
use rebootguard_node::check::{self, Facts, Status};
use tokio::sync::{mpsc, watch};

use crate::api::{self, Cache};
use crate::background::Background;
use crate::config::Config;
use crate::machine::{Action, Alert, Event, Input, LeaseAnswer, Machine, Truth};
use crate::metrics::Metrics;
use crate::notify::Notifier;
use crate::{alert, files, reboot, remedy};

/// Why the agent could not run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// inotify cannot be used.
    #[error("failed to watch {path} with inotify")]
    Inotify {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: nix::Error,
    },
    /// Netlink notifications cannot be had.
    #[error("failed to subscribe to netlink notifications")]
    Netlink(#[source] rebootguard_hostnet::monitor::Error),
    /// A task the agent depends on stopped (a panic, or a watch that
    /// ended); the service manager starts the agent afresh.
    #[error(transparent)]
    Stopped(#[from] crate::background::Stopped),
}

/// What finished in the background.
enum Done {
    Probe {
        ok: bool,
        summary: String,
        took: Duration,
    },
    Restored(Result<String, Failure>),
    Lease(LeaseAnswer),
    Restarted(Result<(), Failure>),
}

/// Runs the agent until SIGTERM or SIGINT.
pub async fn run(settings: Settings, config: Config) -> Result<(), Error> {
    let node = settings.node_name.clone();
    let metrics = Arc::new(Metrics::new());
    let mut background = Background::default();
    if let Some(addr) = config.listen {
        let stale = (config.check_interval * 3).max(Duration::from_secs(30));
        match crate::metrics::serve(addr, metrics.clone(), stale).await {
            Ok(server) => {
                tracing::info!(%addr, "serving /metrics and /healthz");
                background.forever("the /metrics endpoint", server);
            }
            Err(e) => tracing::error!(%addr, "cannot serve /metrics: {e}"),
        }
    }
    let notifier = Notifier::from_env();

    let (file_tx, mut file_rx) = mpsc::channel(16);
    let files =
        files::watch(&settings.paths.subnet_env, file_tx).map_err(|source| Error::Inotify {
            path: settings.paths.subnet_env.display().to_string(),
            source,
        })?;
    background.forever("the subnet.env watch (inotify)", files);
    let (net_tx, mut net_rx) = mpsc::channel::<()>(16);
    let netlink = crate::netlink::watch(net_tx).map_err(Error::Netlink)?;
    background.forever("the netlink notifications", netlink);

    // The API: connect (retrying until a kubeconfig works), then watch and write.
    let cache = Arc::new(Cache::default());
    let (api_tx, mut api_rx) = mpsc::channel::<()>(16);
    let (client_tx, client_rx) = watch::channel::<Option<Client>>(None);
    background.until_done(
        "connecting to the API",
        tokio::spawn(connect(settings.clone(), client_tx)),
    );
    let client = wait_for_client(client_rx.clone(), Duration::from_secs(2)).await;
    let verified_at_start = match &client {
        Some(client) => verified_this_boot(client, &settings).await,
        None => false,
    };
    let mut machine = Machine::new(config.policy.clone(), verified_at_start);
    let (desired_tx, desired_rx) = watch::channel(machine.desired());
    {
        let (cache, node, metrics, heartbeat, taint) = (
            cache.clone(),
            node.clone(),
            metrics.clone(),
            config.heartbeat,
            config.policy.taint,
        );
        let mut client_rx = client_rx.clone();
        let registrar = background.registrar();
        let writer = tokio::spawn(async move {
            let Ok(client) = client_rx.wait_for(Option::is_some).await.map(|c| c.clone()) else {
                return;
            };
            let Some(client) = client else { return };
            api::watch(
                client.clone(),
                node.clone(),
                cache.clone(),
                api_tx,
                &registrar,
            );
            api::reconcile(client, node, desired_rx, cache, heartbeat, taint, metrics).await;
        });
        background.until_done("the condition and taint writer", writer);
    }
    let alerts = alert::spawn(node.clone(), config.alerts.clone(), metrics.clone());
    let (done_tx, mut done_rx) = mpsc::channel::<Done>(16);
    let context = Context {
        settings: settings.clone(),
        config: config.clone(),
        client: client_rx,
        cache: cache.clone(),
        metrics: metrics.clone(),
        alerts,
        done: done_tx,
        recorder: std::sync::OnceLock::new(),
    };

    let tick = [
        config.policy.restart_grace,
        config.policy.restore_interval,
        config.policy.lease_retry,
        config.policy.alert_after,
    ]
    .into_iter()
    .min()
    .unwrap_or(Duration::from_secs(1))
    .div_f64(4.0)
    .clamp(Duration::from_millis(50), Duration::from_secs(1));
    let mut ticker = tokio::time::interval(tick);
    let mut full_check = tokio::time::interval(config.check_interval);
    let mut watchdog = tokio::time::interval(
        notifier
            .watchdog_interval()
            .unwrap_or(Duration::from_secs(3600)),
    );
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let mut ready_sent = false;
    let mut reboot = Reboots::default();
    let (rebooted_tx, mut rebooted_rx) = mpsc::channel::<Result<(), String>>(1);
    tracing::info!(
        node,
        taint = config.policy.taint,
        dry_run = config.dry_run,
        "agent started"
    );

    let outcome = loop {
        let mut check_now = false;
        let mut backup = false;
        tokio::select! {
            Some(_) = file_rx.recv() => { check_now = true; backup = true; }
            Some(()) = net_rx.recv() => check_now = true,
            Some(()) = api_rx.recv() => check_now = true,
            _ = full_check.tick() => {
                check_now = true;
                backup = true;
                context.report_sentinel();
            }
            Some(result) = rebooted_rx.recv() => reboot.finished(&context, result),
            _ = ticker.tick() => context.feed(&mut machine, &desired_tx, Input::Tick),
            Some(done) = done_rx.recv() => {
                let input = context.done(done);
                context.feed(&mut machine, &desired_tx, input);
                // A step finished: look again at once.
                check_now = true;
            }
            _ = watchdog.tick() => notifier.send("WATCHDOG=1"),
            stopped = background.stopped() => {
                tracing::error!(task = stopped.task, "{stopped}; exiting so that the agent starts afresh");
                break Err(stopped.into());
            }
            _ = tokio::signal::ctrl_c() => break Ok(()),
            Some(()) = async { match term.as_mut() { Some(t) => t.recv().await, None => std::future::pending().await } } => break Ok(()),
        }
        metrics.alive();
        reboot.consider(&context, &rebooted_tx);
        if !check_now {
            continue;
        }
        // Collapse a burst of changes into one check.
        while file_rx.try_recv().is_ok() {
            backup = true;
        }
        while net_rx.try_recv().is_ok() || api_rx.try_recv().is_ok() {}
        let report = context.check().await;
        let subnet_env_ok = report
            .get(check::Id::SubnetEnv)
            .is_some_and(|c| c.status == Status::Ok);
        context.feed(&mut machine, &desired_tx, Input::Checked(report));
        if backup && subnet_env_ok && !config.dry_run {
            context.backup();
        }
        // Ready once the node was judged, whether or not the API answers.
        if !ready_sent {
            ready_sent = true;
            notifier.send("READY=1");
        }
    };
    notifier.send("STOPPING=1");
    tracing::info!("agent stopping");
    if let Some(client) = context.client.borrow().clone() {
        let lock = context.lock(client);
        let _ = tokio::time::timeout(Duration::from_secs(2), lock.release()).await;
    }
    outcome
}

/// What every action needs.
struct Context {
    settings: Settings,
    config: Config,
    client: watch::Receiver<Option<Client>>,
    cache: Arc<Cache>,
    metrics: Arc<Metrics>,
    alerts: mpsc::Sender<Alert>,
    done: mpsc::Sender<Done>,
    recorder: std::sync::OnceLock<Recorder>,
}

impl Context {
    async fn check(&self) -> check::Report {
        let started = Instant::now();
        let net_conf = rebootguard_node::observe::read_net_conf(
            &self.settings,
            None,
            Instant::now() + Duration::from_secs(1),
        )
        .await
        .map_err(Failure::from);
        let local = check::gather::local(&self.settings, net_conf).await;
        let facts = Facts {
            local,
            api: self.cache.facts(&self.settings.node_name),
            now: jiff::Timestamp::now(),
        };
        let report = check::evaluate(&facts);
        self.metrics.checked(&report, started.elapsed());
        report
    }

    fn feed(
        &self,
        machine: &mut Machine,
        desired: &watch::Sender<crate::machine::Desired>,
        input: Input,
    ) {
        let actions = machine.step(input, Instant::now());
        let want = machine.desired();
        desired.send_if_modified(|d| {
            let changed = *d != want;
            *d = want.clone();
            changed
        });
        self.metrics.exhausted(machine.exhausted());
        if let Some(c) = &want.condition {
            self.metrics.condition(c.status == Truth::True);
        }
        for action in actions {
            self.act(action);
        }
    }

    fn act(&self, action: Action) {
        let done = self.done.clone();
        match action {
            Action::Probe => {
                let (settings, timeout) = (self.settings.clone(), self.config.probe_timeout);
                tokio::spawn(async move {
                    let started = Instant::now();
                    let (ok, summary) = probe(settings, timeout).await;
                    let _ = done
                        .send(Done::Probe {
                            ok,
                            summary,
                            took: started.elapsed(),
                        })
                        .await;
                });
            }
            Action::Restore => {
                tracing::warn!("restoring subnet.env");
                let settings = self.settings.clone();
                tokio::spawn(async move {
                    let _ = done
                        .send(Done::Restored(
                            remedy::restore(&settings).await.map_err(Failure::from),
                        ))
                        .await;
                });
            }
            Action::AcquireLease => {
                let client = self.client.borrow().clone();
                let lock = client.map(|c| self.lock(c));
                tokio::spawn(async move {
                    let answer = match lock {
                        None => {
                            LeaseAnswer::Failed(Failure::said("the API is not reachable", true))
                        }
                        Some(lock) => match lock.acquire().await {
                            Ok(Outcome::Held { took_from }) => {
                                if let Some(from) = took_from {
                                    tracing::info!(
                                        "took over the restart Lease from {from} (it expired)"
                                    );
                                }
                                LeaseAnswer::Held
                            }
                            Ok(Outcome::Busy { holder, until }) => LeaseAnswer::Busy(format!(
                                "held by {holder}{}",
                                until.map(|u| format!(" until {u}")).unwrap_or_default()
                            )),
                            Err(e) => LeaseAnswer::Failed(Failure::judged(
                                e,
                                rebootguard_cluster::node::Error::is_retryable,
                            )),
                        },
                    };
                    let _ = done.send(Done::Lease(answer)).await;
                });
            }
            Action::RestartK3s => {
                tracing::warn!("restarting k3s");
                let (how, root) = (self.config.restart.clone(), self.settings.root.clone());
                tokio::spawn(async move {
                    let _ = done
                        .send(Done::Restarted(
                            remedy::restart_k3s(&how, &root)
                                .await
                                .map_err(Failure::from),
                        ))
                        .await;
                });
            }
            Action::ReleaseLease => {
                if let Some(client) = self.client.borrow().clone() {
                    let lock = self.lock(client);
                    tokio::spawn(async move {
                        if let Err(e) = lock.release().await {
                            tracing::warn!(
                                "failed to release the restart Lease (it expires on its own): {e}"
                            );
                        }
                    });
                }
            }
            Action::Event(event) => self.record(event, "Remediate"),
            Action::Alert(alert) => {
                if self.alerts.try_send(alert).is_err() {
                    self.metrics.alert("dropped");
                    tracing::warn!("alert queue full; alert dropped");
                }
            }
        }
    }

    /// Logs `event` and records it on the Node (when the API is there).
    fn record(&self, event: Event, action: &'static str) {
        self.announcer(action)(event);
    }

    /// [`Context::record`] as a function a spawned task can keep.
    fn announcer(&self, action: &'static str) -> impl Fn(Event) + Send + 'static {
        // One recorder for the agent's life: it counts repeats into one
        // Event series instead of writing a new Event each time.
        let recorder = self.client.borrow().clone().map(|client| {
            self.recorder
                .get_or_init(|| {
                    Recorder::new(
                        client,
                        Reporter {
                            controller: "rebootguard-agent".into(),
                            instance: Some(self.settings.node_name.clone()),
                        },
                    )
                })
                .clone()
        });
        let reference = ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Node".into()),
            name: Some(self.settings.node_name.clone()),
            uid: self.cache.uid(),
            ..ObjectReference::default()
        };
        let metrics = self.metrics.clone();
        move |event: Event| {
            if event.warning {
                tracing::warn!(reason = event.reason, "{}", event.message);
            } else {
                tracing::info!(reason = event.reason, "{}", event.message);
            }
            let Some(recorder) = recorder.clone() else {
                return;
            };
            let (reference, metrics) = (reference.clone(), metrics.clone());
            tokio::spawn(async move {
                let event = KubeEvent {
                    type_: if event.warning {
                        EventType::Warning
                    } else {
                        EventType::Normal
                    },
                    reason: event.reason.into(),
                    note: Some(event.message),
                    action: action.into(),
                    secondary: None,
                };
                if let Err(e) = recorder.publish(&event, &reference).await {
                    metrics.api_error("event");
                    tracing::warn!("failed to record an event on the Node: {e}");
                }
            });
        }
    }

    /// Brings the Node's `reboot-required` annotation in line with the
    /// sentinel file, when one is configured.
    fn report_sentinel(&self) {
        let present = self.config.reboot.sentinel.as_ref().map(|path| {
            let relative = path.strip_prefix("/").unwrap_or(path);
            self.settings.root.join(relative).exists()
        });
        let shown = self.cache.handshake().required;
        let Some(change) =
            reboot::required_change(present, shown.as_deref(), jiff::Timestamp::now())
        else {
            return;
        };
        let Some(client) = self.client.borrow().clone() else {
            return;
        };
        let (node, metrics) = (self.settings.node_name.clone(), self.metrics.clone());
        tokio::spawn(async move {
            let value = [(REQUIRED, change.as_deref())];
            match annotate(&client, &node, &value, API_BOUND).await {
                Ok(()) => match change {
                    Some(since) => {
                        tracing::info!(since, "the node needs a reboot (sentinel present)")
                    }
                    None => tracing::info!("the node no longer needs a reboot (sentinel gone)"),
                },
                Err(e) => {
                    metrics.api_error("annotation");
                    tracing::warn!(
                        "failed to update {REQUIRED} (trying again at the next full check): {}",
                        rebootguard_errors::chain(&e)
                    );
                }
            }
        });
    }

    fn done(&self, done: Done) -> Input {
        match done {
            Done::Probe { ok, summary, took } => {
                self.metrics.probed(ok, took);
                if ok {
                    tracing::debug!("probe passed: {summary}");
                } else {
                    tracing::warn!("probe failed: {summary}");
                }
                Input::Probed { ok, summary }
            }
            Done::Restored(result) => {
                self.metrics
                    .remediation("restore", if result.is_ok() { "ok" } else { "failed" });
                Input::Restored(result)
            }
            Done::Lease(answer) => {
                let result = match &answer {
                    LeaseAnswer::Held => "held",
                    LeaseAnswer::Busy(_) => "busy",
                    LeaseAnswer::Failed(_) => "failed",
                };
                self.metrics.remediation("lease", result);
                Input::Lease(answer)
            }
            Done::Restarted(result) => {
                self.metrics
                    .remediation("restart-k3s", if result.is_ok() { "ok" } else { "failed" });
                Input::Restarted(result)
            }
        }
    }

    fn lock(&self, client: Client) -> Lock {
        let lease = &self.config.lease;
        Lock::new(
            client,
            &lease.namespace,
            &lease.name,
            &self.settings.node_name,
            lease.ttl,
            Duration::from_secs(10),
        )
    }

    /// Keeps the valid live file in the store (only when it changed).
    fn backup(&self) {
        let settings = self.settings.clone();
        tokio::task::spawn_blocking(move || match rebootguard_node::backup::run(&settings) {
            Ok(rebootguard_node::backup::Outcome::Stored { generation }) => {
                tracing::info!(generation, "backed up subnet.env");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(
                "failed to back up subnet.env: {}",
                rebootguard_errors::chain(&e)
            ),
        });
    }
}

/// Bound on one small API write outside the reconciler.
const API_BOUND: Duration = Duration::from_secs(10);

/// The reboot handshake's side in the run loop: [`reboot::decide`] on
/// every turn (it is cheap), its answers carried out.
#[derive(Default)]
struct Reboots {
    memory: reboot::Memory,
    /// After a failed write of the acceptance, wait before the next try.
    not_before: Option<Instant>,
}

impl Reboots {
    fn consider(&mut self, context: &Context, done: &mpsc::Sender<Result<(), String>>) {
        if self.not_before.is_some_and(|t| Instant::now() < t) {
            return;
        }
        let handshake = context.cache.handshake();
        let mode = reboot::Mode {
            enabled: context.config.reboot.on_request,
            dry_run: context.config.dry_run,
        };
        match reboot::decide(&handshake, mode, jiff::Timestamp::now(), &self.memory) {
            reboot::Decision::Nothing => {}
            reboot::Decision::Refuse { why, .. } => {
                let raw = handshake.request.unwrap_or_default();
                self.memory.refused = Some(reboot::refusal_key(&raw, &why));
                context.record(
                    Event {
                        warning: true,
                        reason: "RebootRefused",
                        message: why,
                    },
                    "Reboot",
                );
            }
            reboot::Decision::Reboot { id } => {
                let Some(client) = context.client.borrow().clone() else {
                    return;
                };
                self.memory.in_flight = true;
                let (node, how, root) = (
                    context.settings.node_name.clone(),
                    context.config.reboot.how.clone(),
                    context.settings.root.clone(),
                );
                let done = done.clone();
                let announce = context.announcer("Reboot");
                tokio::spawn(async move {
                    // Accepted first: the agent after the reboot must find
                    // the request answered, or it would reboot again.
                    let accepted = [(ACCEPTED, Some(id.as_str()))];
                    if let Err(e) = annotate(&client, &node, &accepted, API_BOUND).await {
                        let _ = done
                            .send(Err(format!(
                                "could not record the acceptance of reboot request {id} on the Node, so did not reboot: {}",
                                rebootguard_errors::chain(&e)
                            )))
                            .await;
                        return;
                    }
                    announce(Event {
                        warning: true,
                        reason: "Rebooting",
                        message: format!("rebooting the node for request {id}"),
                    });
                    let rebooted = remedy::reboot(&how, &root).await;
                    let _ = done
                        .send(rebooted.map_err(|e| rebootguard_errors::chain(&e)))
                        .await;
                });
            }
        }
    }

    fn finished(&mut self, context: &Context, result: Result<(), String>) {
        match result {
            // The machine is going down; this agent with it.
            Ok(()) => tracing::warn!("reboot under way"),
            Err(why) => {
                self.memory.in_flight = false;
                self.not_before = Some(Instant::now() + Duration::from_secs(5));
                context.record(
                    Event {
                        warning: true,
                        reason: "RebootFailed",
                        message: why,
                    },
                    "Reboot",
                );
            }
        }
    }
}

/// Runs `node probe`'s probe (a real CNI ADD/DEL) off the async threads;
/// passed or not, and what it saw. `timeout` bounds each plugin call; past
/// three of them the probe is cancelled (its DEL still runs) and counted
/// as failed.
async fn probe(settings: Settings, timeout: Duration) -> (bool, String) {
    let cancel = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let options = rebootguard_node::probe::Options {
        timeout,
        ping_timeout: Duration::from_secs(2),
        cancel: Some(cancel.clone()),
    };
    let work =
        tokio::task::spawn_blocking(move || rebootguard_node::probe::run(&settings, &options));
    match tokio::time::timeout(timeout * 3, work).await {
        Err(_) => {
            cancel.store(true, std::sync::atomic::Ordering::Release);
            (
                false,
                format!("the probe did not finish within {:?}", timeout * 3),
            )
        }
        Ok(Err(e)) => (false, format!("the probe crashed: {e}")),
        Ok(Ok(Err(e))) => (
            false,
            format!("could not probe: {}", rebootguard_errors::chain(&e)),
        ),
        Ok(Ok(Ok(report))) => (report.passed, report.summary),
    }
}

/// Connects to the API, retrying every few seconds until a kubeconfig
/// works (at boot, k3s may not have written its own yet).
async fn connect(settings: Settings, client: watch::Sender<Option<Client>>) {
    let user_agent = format!("{} ({})", crate::USER_AGENT, settings.node_name);
    let mut told = false;
    loop {
        let discovery = Discovery::from_env(settings.kubeconfig.clone(), &settings.root);
        match rebootguard_cluster::client::load(&discovery).await {
            Ok((mut config, source)) => {
                // Watches are long reads: no read timeout; each write is bounded by its caller.
                config.connect_timeout = Some(Duration::from_secs(5));
                config.read_timeout = None;
                config.write_timeout = Some(Duration::from_secs(10));
                match rebootguard_cluster::client::build(config, &source, &user_agent) {
                    Ok(c) => {
                        tracing::info!(%source, "talking to the API server");
                        let _ = client.send(Some(c));
                        return;
                    }
                    Err(e) => {
                        if !told {
                            tracing::warn!("cannot use {source}: {e}; retrying");
                            told = true;
                        }
                    }
                }
            }
            Err(e) => {
                if !told {
                    tracing::warn!(
                        "no API access yet ({e}); checking the node locally and retrying"
                    );
                    told = true;
                }
            }
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}

async fn wait_for_client(
    mut client: watch::Receiver<Option<Client>>,
    bound: Duration,
) -> Option<Client> {
    tokio::time::timeout(bound, client.wait_for(Option::is_some))
        .await
        .ok()
        .and_then(|r| r.ok().and_then(|c| c.clone()))
}

/// Whether the Node's `PodNetworkReady` is `True` since this boot began
/// (an agent restart on a healthy node): then the taint is not put on
/// before the first check.
async fn verified_this_boot(client: &Client, settings: &Settings) -> bool {
    let Ok(boot) = rebootguard_node::host::boot_time(&settings.paths) else {
        return false;
    };
    let api: Api<Node> = Api::all(client.clone());
    let node = tokio::time::timeout(Duration::from_secs(3), api.get_opt(&settings.node_name)).await;
    let Ok(Ok(Some(node))) = node else {
        return false;
    };
    rebootguard_cluster::condition::find(&node, crate::machine::CONDITION).is_some_and(|c| {
        c.status == "True"
            && c.last_transition_time
                .as_ref()
                .is_some_and(|t| std::time::SystemTime::from(t.0) >= boot)
    })
}
