//! A reader polling the file_sd file while discovery's output rewrites it continuously never
//! sees a partial file: every read is one of the complete documents written.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use file_sd::FileOutput;
use file_sd::{TargetGroup, render};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

fn document(targets: u16) -> String {
    let groups: Vec<TargetGroup> = (0..targets)
        .map(|i| {
            let mut group = TargetGroup::new("10.0.0.1", 1000 + i);
            group.label("task_id", &format!("{i:032x}"));
            group
        })
        .collect();
    render(&groups)
}

#[test]
fn a_polling_reader_never_sees_a_partial_file() {
    let dir = std::env::temp_dir().join(format!("discovery-atomic-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("targets.json");
    // Two documents of very different sizes (about 100 KB and 1 KB), so a torn read would
    // show as a length or a parse error.
    let documents = [document(1500), document(10)];
    let mut output = FileOutput::new(path.clone());
    output.update(&documents[0]).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (path, stop, documents) = (path.clone(), stop.clone(), documents.clone());
        std::thread::spawn(move || {
            let mut reads = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let content = std::fs::read_to_string(&path).expect("the file always exists");
                assert!(
                    documents.contains(&content),
                    "read a document that was never written ({} bytes)",
                    content.len()
                );
                serde_json::from_str::<serde_json::Value>(&content).expect("valid JSON");
                reads += 1;
            }
            reads
        })
    };
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut writes = 0u64;
    while Instant::now() < deadline && writes < 20_000 {
        output.update(&documents[(writes % 2) as usize]).unwrap();
        writes += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let reads = reader.join().expect("the reader saw only whole documents");
    assert!(
        writes > 100 && reads > 100,
        "{writes} writes, {reads} reads"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
