//! The fast path for kubectl's own YAML: `kubectl get ... -o yaml` prints
//! one `List` whose `items:` are a block sequence at column 0, one `- `
//! line starting each item and every other line of it indented. Split
//! there, the items parse on every core at once, each alone, so no tree of
//! the whole file is ever built: memory follows the file, not its parse
//! tree. Each item is first read by [`transcode`] (the shapes kubectl
//! prints, straight to JSON), else by the general YAML parser. Anything
//! else (another layout, several documents, an item that does not parse
//! alone) is left to the whole-document path, which also gives the precise
//! error.

use serde_json::Value;

mod transcode;

use crate::snapshot::Snapshot;

/// The items of a kubectl-shaped YAML List, each the bytes of a one-item
/// block sequence (`- apiVersion: v1\n  kind: Pod\n  ...`); `None` when the
/// body is not laid out that way, or holds no item.
pub(crate) fn list_items(body: &[u8]) -> Option<Vec<&[u8]>> {
    let mut items: Vec<&[u8]> = Vec::new();
    let mut in_items = false;
    let mut start: Option<usize> = None;
    let mut at = 0;
    for line in body.split_inclusive(|b| *b == b'\n') {
        let line_start = at;
        at += line.len();
        let text = line.strip_suffix(b"\n").unwrap_or(line);
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        match text.first() {
            // Inside an item (or blank): it continues.
            None | Some(b' ') => continue,
            Some(b'#') => continue,
            _ => {}
        }
        // A column-0 line ends the current item.
        if let Some(s) = start.take() {
            items.push(&body[s..line_start]);
        }
        if text.starts_with(b"---") || text.starts_with(b"...") {
            return None; // more than one document
        }
        if in_items && (text == b"-" || text.starts_with(b"- ")) {
            start = Some(line_start);
        } else if text == b"items:" {
            in_items = true;
        } else if text.starts_with(b"- ") || text == b"-" || !text.contains(&b':') {
            return None; // a sequence elsewhere, or not a mapping key
        } else {
            in_items = false;
        }
    }
    if let Some(s) = start {
        items.push(&body[s..]);
    }
    (!items.is_empty()).then_some(items)
}

/// Parses the items on every core; `None` when one of them does not parse
/// alone as a mapping (the caller then parses the whole document).
pub(crate) fn load_items(
    items: &[&[u8]],
    options: impl Fn() -> serde_saphyr::Options + Sync,
) -> Option<Snapshot> {
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(items.len().div_ceil(256))
        .max(1);
    let per = items.len().div_ceil(threads);
    let parts: Vec<Option<Snapshot>> = std::thread::scope(|s| {
        let workers: Vec<_> = items
            .chunks(per)
            .map(|chunk| s.spawn(|| load_chunk(chunk, &options)))
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().ok().flatten())
            .collect()
    });
    let mut snap = Snapshot::default();
    for part in parts {
        snap.merge(part?);
    }
    Some(snap)
}

fn load_chunk(items: &[&[u8]], options: &impl Fn() -> serde_saphyr::Options) -> Option<Snapshot> {
    // The chunk's items as one JSON List, read by the JSON loader.
    let mut json = br#"{"apiVersion":"v1","kind":"List","items":["#.to_vec();
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            json.push(b',');
        }
        // kubectl's shapes directly; anything else through the general parser.
        let mark = json.len();
        if transcode::item(item, &mut json).is_some() && json.get(mark) == Some(&b'{') {
            continue;
        }
        json.truncate(mark);
        let mut one: Vec<Value> = serde_saphyr::from_slice_with_options(item, options()).ok()?;
        let value = one.pop().filter(|v| one.is_empty() && v.is_object())?;
        serde_json::to_writer(&mut json, &value).ok()?;
    }
    json.extend_from_slice(b"]}");
    let mut snap = Snapshot::default();
    crate::stream::Scanner::new(&json[..], Vec::new())
        .run(&mut snap)
        .ok()?;
    Some(snap)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIST: &str = "apiVersion: v1\nitems:\n- apiVersion: v1\n  kind: Node\n  metadata:\n    name: a\n- apiVersion: v1\n  kind: Pod\n  metadata:\n    name: p\n    namespace: x\n  status:\n    message: |\n      two\n      lines\nkind: List\nmetadata:\n  resourceVersion: \"\"\n";

    #[test]
    fn kubectls_list_splits_at_its_items() {
        let items = list_items(LIST.as_bytes()).expect("a kubectl List");
        assert_eq!(items.len(), 2);
        assert!(items[0].starts_with(b"- apiVersion: v1\n  kind: Node"));
        assert!(items[1].ends_with(b"      lines\n"));
    }

    /// Every kubectl YAML of the corpus loads item by item exactly as it
    /// loads whole.
    #[test]
    fn items_load_as_the_whole_document_does() {
        let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
        let mut seen = 0;
        for case in std::fs::read_dir(corpus).expect("corpus") {
            let path = case.expect("entry").path().join("list.yaml");
            let Ok(body) = std::fs::read(&path) else {
                continue;
            };
            let items = list_items(&body).unwrap_or_else(|| panic!("{path:?} is kubectl's layout"));
            let options = || serde_saphyr::options! { budget: serde_saphyr::budget! { max_nodes: body.len().max(250_000) } };
            let mut fast =
                load_items(&items, options).unwrap_or_else(|| panic!("{path:?} items parse"));
            let mut whole = crate::load::load_yaml_documents(&body).expect("whole document");
            fast.dedup();
            whole.dedup();
            assert_eq!(
                fast.to_json().unwrap(),
                whole.to_json().unwrap(),
                "{path:?}"
            );
            seen += 1;
        }
        assert!(seen >= 4, "only {seen} YAML cases");
    }

    #[test]
    fn other_layouts_are_left_to_the_whole_document() {
        for body in [
            "items:\n  - kind: Node\n",
            "apiVersion: v1\nkind: Node\nmetadata:\n  name: a\n",
            "items:\n- kind: Node\n---\nitems:\n- kind: Pod\n",
            "- kind: Node\n",
            "items: []\n",
        ] {
            assert!(list_items(body.as_bytes()).is_none(), "{body}");
        }
    }
}
