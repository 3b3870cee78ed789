//! `prunus store push|pull|key`: share results through a remote (a shared directory or an
//! S3-compatible bucket). Results travel as entries signed by the store that pushed them; a
//! pull believes an entry only if a trusted key signed it (this store's own, the config's
//! `trust` keys and `--trust`).

use std::path::Path;
use std::process::ExitCode;

use indicatif::{ProgressBar, ProgressStyle};
use miette::{IntoDiagnostic, Result, miette};
use prunus_store::{
    DirRemote, Remote, S3Config, S3Remote, Signed, Store, SyncProgress, SyncReport,
};

use crate::config;
use crate::format::human_bytes;

#[derive(clap::Args)]
pub struct Args {
    /// A remote named in the config file, or a URL: `s3://bucket/prefix`, `file:///path` (a
    /// path starting with `/` or `./` is a directory remote too).
    remote: String,
    /// The S3-compatible server (e.g. `http://127.0.0.1:9000` for MinIO); default: the
    /// config's, else `AWS_ENDPOINT_URL`, else AWS.
    #[arg(long)]
    endpoint: Option<String>,
    /// Also believe results signed by this key (`NAME:BASE64`, as `prunus store key` prints
    /// it); repeatable. Keys in the config's `trust` lines are believed too.
    #[arg(long = "trust", value_name = "KEY")]
    trusted: Vec<String>,
    /// Objects moved at once.
    #[arg(long, short, default_value_t = 8)]
    jobs: usize,
}

/// Uploads every result the remote lacks.
pub fn push(store: &Store, args: Args) -> Result<ExitCode> {
    let (remote, trust) = connect(store, &args)?;
    let bar = bar("pushing");
    let report = store
        .push_all(remote.as_ref(), &trust, args.jobs, &|p| show(&bar, p))
        .into_diagnostic()?;
    bar.finish_and_clear();
    summarise("pushed to", remote.name(), &report)
}

/// Downloads every result of the remote this store lacks and trusts.
pub fn pull(store: &Store, args: Args) -> Result<ExitCode> {
    let (remote, trust) = connect(store, &args)?;
    let bar = bar("pulling");
    let report = store
        .pull_all(remote.as_ref(), &trust, args.jobs, &|p| show(&bar, p))
        .into_diagnostic()?;
    bar.finish_and_clear();
    summarise("pulled from", remote.name(), &report)
}

/// Prints this store's public key.
pub fn key(store: &Store) -> Result<ExitCode> {
    let key = store.signing_key(&signer_name()).into_diagnostic()?;
    println!("{}", key.public());
    eprintln!(
        "results this store pushes are signed with it; a colleague who trusts them adds\n  \
         trust \"{}\"\nto their {}",
        key.public(),
        config::path().map_or("config file".into(), |p| p.display().to_string())
    );
    Ok(ExitCode::SUCCESS)
}

/// The remote `args` names, and the trust of this store's key plus the configured ones.
fn connect(store: &Store, args: &Args) -> Result<(Box<dyn Remote>, Signed)> {
    let config = config::load()?;
    let named = config.remotes.get(&args.remote);
    let url = named.map_or(args.remote.as_str(), |r| r.url.as_str());
    let remote: Box<dyn Remote> = if url.starts_with("s3://") {
        let s3 = S3Config {
            url: url.to_string(),
            endpoint: args
                .endpoint
                .clone()
                .or_else(|| named.and_then(|r| r.endpoint.clone())),
            region: named.and_then(|r| r.region.clone()),
            retries: None,
        };
        Box::new(S3Remote::open(&s3).into_diagnostic()?)
    } else if let Some(path) = url.strip_prefix("file://").or(is_path(url).then_some(url)) {
        Box::new(DirRemote::open(Path::new(path)).into_diagnostic()?)
    } else {
        return Err(miette!(
            help = "use s3://bucket/prefix, file:///path, or a name defined in the config file with \
                    remote \"NAME\" url=\"...\"",
            "`{}` is neither a configured remote nor a remote URL",
            args.remote
        ));
    };
    let trusted: Vec<String> = config
        .trusted
        .iter()
        .chain(&args.trusted)
        .cloned()
        .collect();
    let key = store.signing_key(&signer_name()).into_diagnostic()?;
    let trust = Signed::new(key, &trusted).map_err(|e| miette!("{e}"))?;
    Ok((remote, trust))
}

/// A directory given as a path (`/mnt/cache`, `./remote`), not a bare word that may be a
/// mistyped remote name.
fn is_path(s: &str) -> bool {
    s.starts_with('/') || s.starts_with("./") || s.starts_with("../") || s.starts_with('~')
}

/// `user@host`, the name this store's key signs with.
fn signer_name() -> String {
    let user = std::env::var("USER").unwrap_or_else(|_| "prunus".into());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    format!("{user}@{host}").replace([':', ' '], "-")
}

fn bar(what: &'static str) -> ProgressBar {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{what} {{bar:30}} {{pos}}/{{len}} objects {{msg}} ({{elapsed}}, ETA {{eta}})"
        ))
        .expect("a valid template"),
    );
    bar
}

fn show(bar: &ProgressBar, p: SyncProgress) {
    bar.set_length(p.total_objects);
    bar.set_position(p.objects);
    let secs = bar.elapsed().as_secs_f64().max(1e-3);
    let rate = human_bytes((p.bytes as f64 / secs) as u64);
    bar.set_message(match p.total_bytes {
        0 => format!("{}, {rate}/s", human_bytes(p.bytes)),
        total => format!(
            "{} of {}, {rate}/s",
            human_bytes(p.bytes),
            human_bytes(total)
        ),
    });
}

/// One line of what moved, and each result that did not (exit 1 if any).
fn summarise(verb: &str, remote: &str, r: &SyncReport) -> Result<ExitCode> {
    println!(
        "{verb} {remote}: {} results, {} blobs, {}",
        r.actions,
        r.blobs,
        human_bytes(r.bytes)
    );
    for (key, e) in &r.failed {
        eprintln!("  ✗ {key}: {e}");
    }
    if r.failed.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "{} results did not move; the others did (run again to retry)",
            r.failed.len()
        );
        Ok(ExitCode::FAILURE)
    }
}
