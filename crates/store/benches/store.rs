//! Cost of the store's operations on a real directory: a save (two fsyncs
//! and a rename), an unchanged save (read and compare, no write) and a load
//! of a full store. `node restore` runs a load on every boot before k3s.
//!
//! Run with `cargo bench -p rebootguard-store`; set `REBOOTGUARD_BENCH_DIR`
//! to measure on a particular file system (default: the temporary dir).

use std::hint::black_box;
use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

use rebootguard_store::{NewGeneration, Source, Store, any_content};

fn content(i: u32) -> Vec<u8> {
    format!(
        "FLANNEL_NETWORK=10.42.0.0/16\nFLANNEL_SUBNET=10.42.{}.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n# {i}\n",
        i % 250
    )
    .into_bytes()
}

fn new_gen(content: &[u8]) -> NewGeneration<'_> {
    NewGeneration {
        content,
        node: "bench-node",
        boot_id: "00000000-0000-4000-8000-000000000000",
        pod_cidrs: &[],
        source: Source::Live,
        saved_at: jiff::Timestamp::UNIX_EPOCH,
    }
}

/// Runs `f` until `budget` is spent (at least 10 times); prints the median.
fn measure(name: &str, budget: Duration, mut f: impl FnMut(u32)) {
    let mut samples = Vec::new();
    let start = Instant::now();
    let mut i = 0;
    while samples.len() < 10 || start.elapsed() < budget {
        let t = Instant::now();
        f(i);
        samples.push(t.elapsed());
        i += 1;
    }
    samples.sort();
    let median = samples[samples.len() / 2];
    let p90 = samples[samples.len() * 9 / 10];
    println!(
        "{name:<28} median {:>9.1} µs   p90 {:>9.1} µs   ({} runs)",
        median.as_secs_f64() * 1e6,
        p90.as_secs_f64() * 1e6,
        samples.len()
    );
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let tmp = match std::env::var_os("REBOOTGUARD_BENCH_DIR") {
        Some(dir) => tempfile::tempdir_in(dir)?,
        None => tempfile::tempdir()?,
    };
    let store = Store::open(tmp.path())?.keep(NonZeroUsize::new(5).ok_or("keep")?);
    let budget = Duration::from_secs(2);

    measure("save (new content, keep 5)", budget, |i| {
        let c = content(i);
        black_box(store.save(&new_gen(&c), any_content).expect("save"));
    });
    let same = content(u32::MAX);
    store.save(&new_gen(&same), any_content)?;
    measure("save (unchanged)", budget, |_| {
        black_box(store.save(&new_gen(&same), any_content).expect("save"));
    });
    measure("load (5 generations)", budget, |_| {
        black_box(store.load(any_content).expect("load"));
    });
    measure("latest_for", budget, |_| {
        black_box(
            store
                .latest_for("bench-node", any_content)
                .map(|g| g.is_some()),
        )
        .ok();
    });
    Ok(())
}
