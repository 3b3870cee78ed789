//! Parsing and planning grow linearly with the pipeline, checked on deterministic counts of
//! this process's heap (an allocator that counts), never on time: the times and their
//! targets are in `benches/planning.rs`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use prunus_engine::{Registry, lower, pipeline, plan};
use prunus_store::Store;

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static CALLS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let live = LIVE.fetch_add(layout.size(), Relaxed) + layout.size();
        PEAK.fetch_max(live, Relaxed);
        CALLS.fetch_add(1, Relaxed);
        // SAFETY: the caller's layout, passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Relaxed);
        // SAFETY: allocated above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

/// `n` stages, each reading the previous one, each over a 4-seed sweep.
fn chain(n: usize) -> String {
    let mut s = String::from("pipeline \"chain\"\nsweep seeds {\n    seed 0 1 2 3\n}\n");
    for i in 0..n {
        let needs = if i > 0 {
            format!("    needs s{}\n", i - 1)
        } else {
            String::new()
        };
        s.push_str(&format!(
            "// stage {i}\nstage s{i} {{\n    kind \"test/echo\"\n    over seeds\n{needs}    value \"v{i}\"\n}}\n"
        ));
    }
    s
}

/// The peak heap above what was live before `f`, and `f`'s allocation count.
fn measure<T>(f: impl FnOnce() -> T) -> (T, usize, usize) {
    let (base, calls) = (LIVE.load(Relaxed), CALLS.load(Relaxed));
    PEAK.store(base, Relaxed);
    let out = f();
    (out, PEAK.load(Relaxed) - base, CALLS.load(Relaxed) - calls)
}

// One test, so that no other test's allocations run in between.
#[test]
fn heap_grows_linearly_with_the_pipeline() {
    // Parsing holds the parser's document for one chunk at a time, not for the whole file
    // (it takes ~150 bytes per source byte: a 10 MB pipeline needed 1.6 GB).
    let text = chain(20_000);
    let (_, peak, _) = measure(|| pipeline::parse_str("chain", &text).unwrap());
    let per_byte = peak as f64 / text.len() as f64;
    assert!(
        per_byte < 60.0,
        "parsing peaked at {per_byte:.0} bytes per source byte"
    );

    // Lowering and planning: twice the stages, twice the allocations.
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    let registry = Registry::builtin(Path::new("."));
    let calls = |n: usize| {
        let (p, sources) = pipeline::parse_str("chain", &chain(n)).unwrap();
        let (_, _, calls) = measure(|| {
            let graph = lower::lower(&p, &sources, &registry).unwrap();
            assert_eq!(graph.instances.len(), 4 * n);
            plan::plan(&graph, &store).unwrap().len()
        });
        calls
    };
    let (small, large) = (calls(2_000), calls(4_000));
    let ratio = large as f64 / small as f64;
    assert!(
        (1.8..2.2).contains(&ratio),
        "lowering and planning 2x the stages made {ratio:.2}x the allocations ({small} -> {large})"
    );
}
