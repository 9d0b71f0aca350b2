//! Scale benchmark: kubesim holding 5,000 nodes and 150,000 pods.
//!
//! Runs kubesim in a child process (this same binary, in server mode) so
//! its peak RSS is its own, then measures from outside:
//! - seeding time and RSS after seeding,
//! - `LIST /api/v1/pods?limit=500` paged to the end (raw HTTP and kube-rs
//!   typed), per-page and total latency,
//! - one unpaginated `LIST /api/v1/pods`,
//! - the real `kubectl get pods -A -o json` (if kubectl is on PATH),
//! - kubesim's peak RSS (VmHWM) at the end.
//!
//! `cargo bench -p kubesim --bench scale`; smaller runs with
//! `KUBESIM_BENCH_NODES=500 KUBESIM_BENCH_PODS=15000`.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::ListParams;
use kubesim::fixtures;
use serde_json::json;

const SERVE_ENV: &str = "KUBESIM_BENCH_SERVE";

fn env_or(key: &str, default: usize) -> usize {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rss_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn serve(spec: &str) {
    let (nodes, pods) = spec.split_once(',').expect("nodes,pods");
    let (nodes, pods): (usize, usize) =
        (nodes.parse().expect("nodes"), pods.parse().expect("pods"));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let sim = kubesim::KubeSim::start().await.expect("kubesim starts");
        let t = Instant::now();
        for i in 0..50 {
            sim.create(&json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": format!("ns-{i}")}})).expect("namespace");
        }
        for i in 0..nodes {
            sim.create(&fixtures::node(i)).expect("node");
        }
        for i in 0..pods {
            sim.create(&fixtures::pod(i, nodes)).expect("pod");
        }
        let mut out = std::io::stdout();
        writeln!(out, "READY {} {:.2}", sim.url(), t.elapsed().as_secs_f64()).expect("stdout");
        out.flush().expect("stdout");
        // Serve until the parent closes our stdin.
        tokio::task::spawn_blocking(|| {
            let mut line = String::new();
            while std::io::stdin().read_line(&mut line).is_ok_and(|n| n > 0) {
                line.clear();
            }
        })
        .await
        .expect("stdin reader");
    });
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}

fn main() {
    if let Ok(spec) = std::env::var(SERVE_ENV) {
        serve(&spec);
        return;
    }
    let nodes = env_or("KUBESIM_BENCH_NODES", 5_000);
    let pods = env_or("KUBESIM_BENCH_PODS", 150_000);
    println!("kubesim scale: {nodes} nodes, {pods} pods");
    let exe = std::env::current_exe().expect("own path");
    let mut child = Command::new(exe)
        .env(SERVE_ENV, format!("{nodes},{pods}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("server child starts");
    let pid = child.id();
    let mut ready = String::new();
    BufReader::new(child.stdout.take().expect("child stdout"))
        .read_line(&mut ready)
        .expect("READY line");
    let mut words = ready.split_whitespace().skip(1);
    let url = words.next().expect("url").to_owned();
    let seed_secs = words.next().unwrap_or("?").to_owned();
    println!(
        "seed (in process): {seed_secs} s; RSS after seeding: {} MiB",
        rss_kib(pid, "VmRSS") / 1024
    );

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let client = kube::Client::try_from(kube::Config::new(url.parse().expect("url"))).expect("client");

        // Raw pages: server latency plus transfer, no client decoding.
        let mut pages = Vec::new();
        let mut items = 0usize;
        let mut token: Option<String> = None;
        let t = Instant::now();
        loop {
            let mut path = "/api/v1/pods?limit=500".to_owned();
            if let Some(c) = &token {
                path.push_str(&format!("&continue={c}"));
            }
            let p = Instant::now();
            let body = client.request_text(http::Request::get(path).body(Vec::new()).expect("request")).await.expect("page");
            pages.push(p.elapsed());
            let v: serde_json::Value = serde_json::from_str(&body).expect("json");
            items += v["items"].as_array().map_or(0, Vec::len);
            token = v["metadata"]["continue"].as_str().map(str::to_owned);
            if token.is_none() {
                break;
            }
        }
        let total = t.elapsed();
        pages.sort();
        println!(
            "LIST pods limit=500 (raw): {items} pods in {} pages, total {:.2} s, page p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            pages.len(),
            total.as_secs_f64(),
            pct(&pages, 0.5).as_secs_f64() * 1e3,
            pct(&pages, 0.99).as_secs_f64() * 1e3,
            pct(&pages, 1.0).as_secs_f64() * 1e3
        );

        // kube-rs typed pages, as a rebootguard client would read them.
        let api: Api<Pod> = Api::all(client.clone());
        let t = Instant::now();
        let mut lp = ListParams::default().limit(500);
        let mut typed = 0usize;
        loop {
            let page = api.list(&lp).await.expect("typed page");
            typed += page.items.len();
            match page.metadata.continue_ {
                Some(c) => lp = ListParams::default().limit(500).continue_token(&c),
                None => break,
            }
        }
        println!("LIST pods limit=500 (kube-rs typed): {typed} pods, total {:.2} s", t.elapsed().as_secs_f64());

        let t = Instant::now();
        let body = client
            .request_text(http::Request::get("/api/v1/pods").body(Vec::new()).expect("request"))
            .await
            .expect("full list");
        println!(
            "LIST pods unpaginated (raw): {:.0} MiB in {:.2} s",
            body.len() as f64 / 1048576.0,
            t.elapsed().as_secs_f64()
        );
        drop(body);
    });

    let kubeconfig =
        std::env::temp_dir().join(format!("kubesim-bench-{}.json", std::process::id()));
    std::fs::write(
        &kubeconfig,
        json!({"apiVersion": "v1", "kind": "Config", "clusters": [{"name": "k", "cluster": {"server": url}}],
               "users": [{"name": "k", "user": {}}], "contexts": [{"name": "k", "context": {"cluster": "k", "user": "k"}}], "current-context": "k"})
        .to_string(),
    )
    .expect("kubeconfig");
    let cache = std::env::temp_dir().join(format!("kubesim-bench-cache-{}", std::process::id()));
    let t = Instant::now();
    match Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .arg("--cache-dir")
        .arg(&cache)
        .args(["get", "pods", "-A", "-o", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
    {
        Ok(out) if out.status.success() => {
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("kubectl JSON");
            println!(
                "kubectl get pods -A -o json: {} pods, {:.0} MiB, {:.2} s",
                v["items"].as_array().map_or(0, Vec::len),
                out.stdout.len() as f64 / 1048576.0,
                t.elapsed().as_secs_f64()
            );
        }
        Ok(out) => println!(
            "kubectl get pods -A -o json FAILED: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => println!("kubectl not run: {e}"),
    }
    let _ = std::fs::remove_file(&kubeconfig);
    let _ = std::fs::remove_dir_all(&cache);

    let peak = rss_kib(pid, "VmHWM");
    println!(
        "kubesim peak RSS (VmHWM): {} MiB (limit 2048 MiB): {}",
        peak / 1024,
        if peak <= 2 * 1024 * 1024 {
            "ok"
        } else {
            "OVER"
        }
    );
    drop(child.stdin.take());
    let _ = child.wait();
}
