//! Scale benchmark for `diagnose --snapshot` (issue 5's performance target).
//!
//! ```text
//! cargo bench -p rebootguard-diagnose --bench scale -- [--nodes 5000] [--pods 150000]
//!     [--events 300000] [--file PATH] [--keep] [--no-jq] [--list]
//! ```
//!
//! 1. Generates a snapshot file of realistic objects (as `kubectl get -o
//!    json` prints them) with a few thousand failures mixed in: flannel's
//!    subnet.env missing on 20 rebooted nodes, stale `Unknown` pods there,
//!    crash loops and image pulls elsewhere.
//! 2. Runs the diagnosis in a child process (this binary with `--diagnose`):
//!    stream the file through `load_reader`, analyse, render JSON; reports
//!    wall time and peak RSS (`VmHWM`).
//! 3. Times `jq '[.pods[] | select(.status.phase != "Running")] | length'`
//!    on the same file and prints both against the targets (diagnose ≤ 1/10
//!    of jq's time, peak RSS ≤ 1.5 × file size).
//!
//! With `--list` the file is what `kubectl get nodes,pods,events -A -o json`
//! prints (one `List`), jq's filter selects `.items[]` of kind Pod, and the
//! same items are also measured gzip-compressed (target ≤ 0.15 × jq on the
//! JSON) and as the `-o yaml` file (reported; target ≤ 1 × jq), both written
//! from the JSON by streaming its items.

#[path = "../tests/common/kube.rs"]
mod kube;

use std::io::{BufWriter, Write};
use std::process::Command;
use std::time::Instant;

use kube::{NodeB, PodB, State, event};
use rebootguard_diagnose::{Config, analyse, load_reader, render};
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

struct Args {
    nodes: usize,
    pods: usize,
    events: usize,
    file: Option<String>,
    keep: bool,
    jq: bool,
    list: bool,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        nodes: 5000,
        pods: 150_000,
        events: 300_000,
        file: None,
        keep: false,
        jq: true,
        list: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(x) = it.next() {
        let mut num = |name: &str| -> Result<usize, String> {
            it.next()
                .and_then(|v| v.parse().ok())
                .ok_or(format!("{name} needs a number"))
        };
        match x.as_str() {
            "--nodes" => a.nodes = num("--nodes")?,
            "--pods" => a.pods = num("--pods")?,
            "--events" => a.events = num("--events")?,
            "--file" => a.file = it.next(),
            "--keep" => a.keep = true,
            "--no-jq" => a.jq = false,
            "--list" => a.list = true,
            "--bench" => {} // passed by `cargo bench`
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(a)
}

const NOW: &str = "2026-01-31T07:22:00Z";

fn generate(a: &Args, path: &str) -> std::io::Result<u64> {
    let f = std::fs::File::create(path)?;
    let mut w = BufWriter::with_capacity(1 << 20, f);
    if a.list {
        // `kubectl get nodes,pods,events -A -o json`: one List, items mixed.
        w.write_all(
            b"{\"apiVersion\":\"v1\",\"kind\":\"List\",\"metadata\":{\"resourceVersion\":\"\"},",
        )?;
    } else {
        write!(
            w,
            "{{\"apiVersion\":\"rebootguard.io/v1alpha1\",\"kind\":\"Snapshot\",\"metadata\":{{\"collectedAt\":\"{NOW}\",\"source\":\"bench\"}},"
        )?;
    }
    let open_array = |key: &str| -> Vec<u8> {
        match (a.list, key) {
            (true, "nodes") => b"\"items\":[".to_vec(),
            (true, _) => b",".to_vec(),
            (false, "nodes") => format!("\"{key}\":[").into_bytes(),
            (false, _) => format!("],\"{key}\":[").into_bytes(),
        }
    };
    let broken_nodes = 20.min(a.nodes);
    let node_name = |i: usize| format!("node-{i:05}");
    w.write_all(&open_array("nodes"))?;
    for i in 0..a.nodes {
        if i > 0 {
            w.write_all(b",")?;
        }
        let name = node_name(i);
        let cidr = format!("10.{}.{}.0/24", 64 + i / 256, i % 256);
        let n = NodeB {
            name: &name,
            cidr: &cidr,
            ip: "192.168.0.1",
            boot_id: kube::uid(&name),
            ready: "True",
            ready_since: if i < broken_nodes {
                "2026-01-31T07:18:05Z"
            } else {
                "2026-01-10T08:00:00Z"
            },
            created: "2025-12-01T00:00:00Z",
        }
        .build();
        serde_json::to_writer(&mut w, &n)?;
    }
    w.write_all(&open_array("pods"))?;
    let mut warn_pods: Vec<(String, String, String, &'static str)> = Vec::new();
    for i in 0..a.pods {
        if i > 0 {
            w.write_all(b",")?;
        }
        let node = node_name(i % a.nodes.max(1));
        let on_broken = i % a.nodes.max(1) < broken_nodes;
        let ns = format!("team-{:03}", i % 200);
        let app = format!("svc-{:05}", (i / 3) % 50_000);
        let mut p = PodB::deployment(
            &ns,
            &app,
            "6d7f8c9b5",
            &format!("p{i:06}"),
            &node,
            &format!("registry.example.com/{app}:1.{}", i % 7),
        )
        .claim(&format!("{app}-data"))
        .ip("10.64.0.9");
        if on_broken && (i / a.nodes.max(1)).is_multiple_of(4) {
            // Pre-reboot copies: deleted, stuck Unknown.
            p = p
                .state(State::Unknown {
                    deleted: "2026-01-31T07:04:12Z".into(),
                })
                .start("2026-01-20T10:00:00Z");
        } else if on_broken {
            p = p.state(State::Creating).start("2026-01-31T07:18:30Z");
            warn_pods.push((ns.clone(), p.name.clone(), node.clone(), "sandbox"));
        } else if i % 300 == 7 {
            p = p.state(State::CrashLoop {
                exit: 1,
                message: "panic: runtime error: invalid memory address or nil pointer dereference"
                    .into(),
                restarts: 17,
            });
            warn_pods.push((ns.clone(), p.name.clone(), node.clone(), "backoff"));
        } else if i % 500 == 11 {
            p = p.state(State::ImagePull {
                reason: "ImagePullBackOff".into(),
                message: "Back-off pulling image".into(),
            });
        }
        serde_json::to_writer(&mut w, &p.build())?;
    }
    w.write_all(&open_array("events"))?;
    let mut written = 0usize;
    for (k, (ns, pod, node, what)) in warn_pods.iter().enumerate() {
        if written >= a.events {
            break;
        }
        if written > 0 {
            w.write_all(b",")?;
        }
        let e = if *what == "sandbox" {
            let msg = format!(
                "Failed to create pod sandbox: rpc error: code = Unknown desc = failed to setup network for sandbox \"{k:032x}\": plugin type=\"flannel\" failed (add): loadFlannelSubnetEnv failed: open /run/flannel/subnet.env: no such file or directory"
            );
            event(
                ns,
                ("Pod", ns, pod),
                "FailedCreatePodSandBox",
                "Warning",
                &msg,
                14,
                "2026-01-31T07:18:31Z",
                "2026-01-31T07:21:50Z",
                ("kubelet", node),
            )
        } else {
            event(
                ns,
                ("Pod", ns, pod),
                "BackOff",
                "Warning",
                &format!("Back-off restarting failed container main in pod {pod}_{ns}"),
                40,
                "2026-01-31T05:00:00Z",
                "2026-01-31T07:21:00Z",
                ("kubelet", node),
            )
        };
        serde_json::to_writer(&mut w, &e)?;
        written += 1;
    }
    for i in 0..broken_nodes {
        if written >= a.events {
            break;
        }
        let name = node_name(i);
        w.write_all(b",")?;
        let e = event(
            "default",
            ("Node", "", &name),
            "Rebooted",
            "Warning",
            &format!(
                "Node {name} has been rebooted, boot id: {}",
                kube::uid(&name)
            ),
            1,
            "2026-01-31T07:17:40Z",
            "2026-01-31T07:17:40Z",
            ("kubelet", &name),
        );
        serde_json::to_writer(&mut w, &e)?;
        written += 1;
    }
    // The rest: the Normal lifecycle events every pod start leaves.
    let reasons = [
        (
            "Scheduled",
            "Successfully assigned {ns}/{pod} to {node}",
            "default-scheduler",
        ),
        (
            "Pulled",
            "Container image \"registry.example.com/app:1.2\" already present on machine",
            "kubelet",
        ),
        ("Created", "Created container: main", "kubelet"),
        ("Started", "Started container main", "kubelet"),
    ];
    let mut i = 0usize;
    while written < a.events {
        let node = node_name(i % a.nodes.max(1));
        let ns = format!("team-{:03}", i % 200);
        let pod = format!(
            "svc-{:05}-6d7f8c9b5-p{:06}",
            (i / 3) % 50_000,
            i % a.pods.max(1)
        );
        let (reason, msg, comp) = reasons[i % reasons.len()];
        let msg = msg
            .replace("{ns}", &ns)
            .replace("{pod}", &pod)
            .replace("{node}", &node);
        if written > 0 {
            w.write_all(b",")?;
        }
        let e = event(
            &ns,
            ("Pod", &ns, &pod),
            reason,
            "Normal",
            &msg,
            1,
            "2026-01-31T06:00:00Z",
            "2026-01-31T06:00:00Z",
            (comp, &node),
        );
        serde_json::to_writer(&mut w, &e)?;
        written += 1;
        i += 1;
    }
    if a.list {
        w.write_all(b"]}\n")?;
    } else {
        w.write_all(b"],\"services\":[],\"endpointSlices\":[],\"custom\":[]}\n")?;
    }
    w.flush()?;
    Ok(std::fs::metadata(path)?.len())
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// CPU seconds (user + system) this process used so far; Linux's clock
/// tick is 100 Hz.
fn cpu_secs() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(')')?.1.to_string();
            // Fields after the command, skipping the state letter: utime and
            // stime are the 14th and 15th of the line.
            let f: Vec<i64> = rest
                .split_whitespace()
                .skip(1)
                .filter_map(|x| x.parse().ok())
                .collect();
            Some((f.get(10)? + f.get(11)?) as f64 / 100.0)
        })
        .unwrap_or(f64::NAN)
}

/// The measured step: what `rebootguard diagnose --snapshot FILE -o json` does.
fn diagnose(path: &str) -> Result<(), String> {
    let start = Instant::now();
    // What the CLI does: hand the open file to the streaming loader.
    let file = std::fs::File::open(path).map_err(|e| format!("open {path}: {e}"))?;
    let t_read = start.elapsed();
    let snap = load_reader(file).map_err(|e| e.to_string())?;
    let t_load = start.elapsed();
    let rss_loaded = peak_rss_kib();
    // A kubectl List carries no collection time: use the generator's.
    let now = snap
        .metadata
        .collected_at
        .unwrap_or_else(|| NOW.parse().expect("constant time"));
    let report = analyse(&snap, now, &Config::default());
    let t_analyse = start.elapsed();
    let out = render::json(&report);
    let elapsed = start.elapsed();
    eprintln!("  cpu: {:.2}s user+system over all threads", cpu_secs());
    eprintln!(
        "  phases: open {:.3}s, load {:.3}s (peak RSS then {} MiB), analyse {:.3}s, render {:.3}s",
        t_read.as_secs_f64(),
        (t_load - t_read).as_secs_f64(),
        rss_loaded / 1024,
        (t_analyse - t_load).as_secs_f64(),
        (elapsed - t_analyse).as_secs_f64()
    );
    println!(
        "{} {} {} {} {}",
        elapsed.as_secs_f64(),
        peak_rss_kib(),
        report.roots.len(),
        report.stale.pods.len(),
        out.len()
    );
    if let Some(r) = report.roots.first() {
        eprintln!("  first root: {}", r.title);
    }
    Ok(())
}

fn main() {
    let raw: Vec<String> = std::env::args().collect();
    if raw.get(1).map(String::as_str) == Some("--diagnose") {
        let path = raw.get(2).cloned().unwrap_or_default();
        if let Err(e) = diagnose(&path) {
            eprintln!("diagnose failed: {e}");
            std::process::exit(2);
        }
        return;
    }
    let a = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let path = a.file.clone().unwrap_or_else(|| {
        std::env::temp_dir()
            .join(format!("rebootguard-scale-{}.json", a.pods))
            .display()
            .to_string()
    });
    let t = Instant::now();
    let size = match generate(&a, &path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("failed to write {path}: {e}");
            std::process::exit(2);
        }
    };
    println!(
        "generated {} nodes, {} pods, {} events: {} ({:.1} MiB) in {:.1}s",
        a.nodes,
        a.pods,
        a.events,
        path,
        size as f64 / 1048576.0,
        t.elapsed().as_secs_f64()
    );
    let exe = std::env::current_exe().expect("own path");
    let measure = |what: &str, path: &str| -> Option<f64> {
        // Warm the page cache so every tool reads from memory.
        let _ = std::fs::read(path);
        let out = Command::new(&exe)
            .args(["--diagnose", path])
            .output()
            .expect("run child");
        eprint!("{}", String::from_utf8_lossy(&out.stderr));
        let line = String::from_utf8_lossy(&out.stdout);
        let f: Vec<&str> = line.split_whitespace().collect();
        if !out.status.success() || f.len() < 5 {
            println!("diagnose {what}: failed ({})", line.trim());
            return None;
        }
        let secs: f64 = f[0].parse().unwrap_or(f64::NAN);
        let rss_kib: f64 = f[1].parse().unwrap_or(f64::NAN);
        let file = std::fs::metadata(path).map_or(f64::NAN, |m| m.len() as f64);
        println!(
            "diagnose {what}: {secs:.2}s, peak RSS {:.1} MiB ({:.2}× this file, {:.2}× the JSON; target ≤ 1.00 on kubectl's JSON), {} roots, {} stale pods",
            rss_kib / 1024.0,
            rss_kib * 1024.0 / file,
            rss_kib * 1024.0 / size as f64,
            f[2],
            f[3]
        );
        Some(secs)
    };
    let Some(secs) = measure("JSON", &path) else {
        std::process::exit(1);
    };
    let mut others: Vec<(&str, Option<f64>, f64, String)> = Vec::new();
    if a.list {
        let gz = format!("{path}.gz");
        let yaml = format!("{path}.yaml");
        let t = Instant::now();
        if let Err(e) = gzip(&path, &gz) {
            eprintln!("failed to write {gz}: {e}");
            std::process::exit(2);
        }
        println!(
            "gzip: {:.1} MiB in {:.1}s",
            mib(&gz),
            t.elapsed().as_secs_f64()
        );
        others.push(("gzip", measure("gzip", &gz), 0.15, gz));
        let t = Instant::now();
        if let Err(e) = yaml_of(&path, &yaml) {
            eprintln!("failed to write {yaml}: {e}");
            std::process::exit(2);
        }
        println!(
            "YAML: {:.1} MiB in {:.1}s",
            mib(&yaml),
            t.elapsed().as_secs_f64()
        );
        others.push(("YAML", measure("YAML", &yaml), 1.0, yaml));
    }
    if a.jq {
        let t = Instant::now();
        let filter = if a.list {
            "[.items[] | select(.kind == \"Pod\" and .status.phase != \"Running\")] | length"
        } else {
            "[.pods[] | select(.status.phase != \"Running\")] | length"
        };
        let jq = Command::new("jq").args([filter, &path]).output();
        match jq {
            Ok(o) if o.status.success() => {
                let jq_secs = t.elapsed().as_secs_f64();
                println!(
                    "jq count of non-Running pods: {} in {jq_secs:.2}s; diagnose/jq = {:.3} (target ≤ 0.100)",
                    String::from_utf8_lossy(&o.stdout).trim(),
                    secs / jq_secs
                );
                for (what, secs, target, _) in &others {
                    let Some(secs) = secs else { continue };
                    println!(
                        "diagnose {what} / jq on the JSON = {:.3} (target ≤ {target:.2})",
                        secs / jq_secs
                    );
                }
            }
            Ok(o) => println!("jq failed: {}", String::from_utf8_lossy(&o.stderr)),
            Err(e) => println!("jq not run: {e}"),
        }
    }
    if !a.keep {
        let _ = std::fs::remove_file(&path);
        for (.., p) in &others {
            let _ = std::fs::remove_file(p);
        }
    }
}

fn mib(path: &str) -> f64 {
    std::fs::metadata(path).map_or(f64::NAN, |m| m.len() as f64 / 1048576.0)
}

/// `gzip -6 < from > to`.
fn gzip(from: &str, to: &str) -> std::io::Result<()> {
    let mut input = std::io::BufReader::new(std::fs::File::open(from)?);
    let out = BufWriter::new(std::fs::File::create(to)?);
    let mut z = flate2::write::GzEncoder::new(out, flate2::Compression::default());
    std::io::copy(&mut input, &mut z)?;
    z.finish()?.flush()
}

/// The `-o yaml` form of a kubectl List JSON file, as kubectl prints it,
/// written item by item so that the whole List is never in memory.
fn yaml_of(from: &str, to: &str) -> std::io::Result<()> {
    let input = std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(from)?);
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(to)?);
    out.write_all(b"apiVersion: v1\nitems:\n")?;
    let mut de = serde_json::Deserializer::from_reader(input);
    ListItems(&mut out)
        .deserialize(&mut de)
        .map_err(std::io::Error::other)?;
    out.write_all(b"kind: List\nmetadata:\n  resourceVersion: \"\"\n")?;
    out.flush()
}

/// Visits a List, writing each of its `items` as a YAML sequence entry.
struct ListItems<'w, W>(&'w mut W);

impl<'de, W: Write> DeserializeSeed<'de> for ListItems<'_, W> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, W: Write> Visitor<'de> for ListItems<'_, W> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a kubectl List")
    }
    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<(), M::Error> {
        while let Some(key) = map.next_key::<String>()? {
            if key == "items" {
                map.next_value_seed(ItemsSeq(&mut *self.0))?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

struct ItemsSeq<'w, W>(&'w mut W);

impl<'de, W: Write> DeserializeSeed<'de> for ItemsSeq<'_, W> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, W: Write> Visitor<'de> for ItemsSeq<'_, W> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("the List's items")
    }
    fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<(), S::Error> {
        use serde::de::Error as _;
        while let Some(item) = seq.next_element::<Value>()? {
            let text = serde_saphyr::to_string(&item).map_err(S::Error::custom)?;
            for (i, line) in text.lines().enumerate() {
                let prefix: &[u8] = if i == 0 { b"- " } else { b"  " };
                self.0
                    .write_all(prefix)
                    .and_then(|()| self.0.write_all(line.as_bytes()))
                    .and_then(|()| self.0.write_all(b"\n"))
                    .map_err(S::Error::custom)?;
            }
        }
        Ok(())
    }
}
