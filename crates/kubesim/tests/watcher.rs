//! kube-runtime's watcher and reflector over kubesim survive cut watches,
//! forced 410s and injected 503s, and converge to the server's state
//! (property test over random operation sequences).

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher::{self, InitialListStrategy};
use kubesim::faults::{Failure, Route};
use kubesim::{KubeSim, Options};
use proptest::prelude::*;
use serde_json::json;

#[derive(Debug, Clone)]
enum Op {
    Create(u8),
    Update(u8, u8),
    Delete(u8),
    CutWatches,
    ExpireNextWatch,
    FailNext(u8),
    Pause(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..12).prop_map(Op::Create),
        4 => (0u8..12, any::<u8>()).prop_map(|(i, v)| Op::Update(i, v)),
        2 => (0u8..12).prop_map(Op::Delete),
        1 => Just(Op::CutWatches),
        1 => Just(Op::ExpireNextWatch),
        1 => (1u8..3).prop_map(Op::FailNext),
        1 => (0u8..50).prop_map(Op::Pause),
    ]
}

fn server_state(sim: &KubeSim) -> BTreeMap<String, String> {
    sim.list("v1", "ConfigMap", Some("default"))
        .into_iter()
        .map(|o| {
            (
                o["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                o["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect()
}

fn cache_state(store: &Store<ConfigMap>) -> BTreeMap<String, String> {
    store
        .state()
        .iter()
        .map(|c| {
            (
                c.metadata.name.clone().unwrap_or_default(),
                c.metadata.resource_version.clone().unwrap_or_default(),
            )
        })
        .collect()
}

async fn run(ops: Vec<Op>, streaming: bool) -> Result<kubesim::faults::Counts, String> {
    let sim = KubeSim::with_options(Options {
        // Short history so that some re-watches fall off it and get 410.
        history: 8,
        bookmark_interval: Duration::from_millis(200),
        ..Options::default()
    })
    .await
    .map_err(|e| e.to_string())?;
    let client = sim.client().map_err(|e| e.to_string())?;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let mut cfg = watcher::Config::default().timeout(5);
    cfg.page_size = Some(3);
    if streaming {
        cfg.initial_list_strategy = InitialListStrategy::StreamingList;
    }
    let (reader, writer) = reflector::store();
    let stream = watcher::watcher(api.clone(), cfg)
        .default_backoff()
        .reflect(writer);
    let driver = tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while stream.next().await.is_some() {}
    });
    // Injected failures match only watch and list requests, so the writes
    // below always land. They are capped: each one makes the watcher back
    // off exponentially, and a dozen would outlast any sane deadline.
    let mut failures_left = 3u32;
    for op in ops {
        match op {
            Op::Create(i) => {
                let cm: ConfigMap = serde_json::from_value(
                    json!({"metadata": {"name": format!("cm-{i}")}, "data": {"v": "0"}}),
                )
                .map_err(|e| e.to_string())?;
                // AlreadyExists is an expected outcome of a random sequence.
                let _ = api.create(&PostParams::default(), &cm).await;
            }
            Op::Update(i, v) => {
                let p = Patch::Merge(json!({"data": {"v": v.to_string()}}));
                let _ = api
                    .patch(&format!("cm-{i}"), &PatchParams::default(), &p)
                    .await;
            }
            Op::Delete(i) => {
                let _ = api
                    .delete(&format!("cm-{i}"), &DeleteParams::default())
                    .await;
            }
            Op::CutWatches => sim.cut_watches(),
            Op::ExpireNextWatch => sim.expire_next_watches(1),
            Op::FailNext(n) => {
                let n = u32::from(n).min(failures_left);
                failures_left -= n;
                sim.fail_next(Route::verb("watch"), n, Failure::Unavailable);
                sim.fail_next(Route::verb("list"), n, Failure::Internal);
            }
            Op::Pause(ms) => tokio::time::sleep(Duration::from_millis(u64::from(ms))).await,
        }
    }
    let want = server_state(&sim);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let result = loop {
        let have = cache_state(&reader);
        if have == want {
            break Ok(sim.requests());
        }
        if tokio::time::Instant::now() > deadline {
            break Err(format!(
                "reflector did not converge:\n cache  {have:?}\n server {want:?}\n requests {:?}",
                sim.requests()
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    driver.abort();
    result
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, max_shrink_iters: 8, .. ProptestConfig::default() })]

    #[test]
    fn reflector_converges(ops in proptest::collection::vec(op(), 1..40), streaming in any::<bool>()) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let outcome = rt.block_on(run(ops, streaming));
        prop_assert!(outcome.is_ok(), "{}", outcome.unwrap_err());
    }
}

/// A fixed worst case: every kind of disruption, in a row, mid-stream.
#[tokio::test(flavor = "multi_thread")]
async fn survives_cut_expire_and_errors_in_a_row() {
    let ops = vec![
        Op::Create(1),
        Op::Create(2),
        Op::Pause(30),
        Op::CutWatches,
        Op::Update(1, 7),
        Op::ExpireNextWatch,
        Op::CutWatches,
        Op::Delete(2),
        Op::FailNext(2),
        Op::CutWatches,
        Op::Create(3),
        Op::Update(3, 9),
    ];
    let counts = run(ops.clone(), false).await.unwrap();
    let lists = counts
        .get(&("list".to_owned(), "configmaps".to_owned()))
        .copied()
        .unwrap_or(0);
    assert!(
        lists >= 2,
        "the forced 410 must cause a re-list: {counts:?}"
    );
    let counts = run(ops, true).await.unwrap();
    let watches = counts
        .get(&("watch".to_owned(), "configmaps".to_owned()))
        .copied()
        .unwrap_or(0);
    assert!(watches >= 4, "each cut must cause a re-watch: {counts:?}");
}
