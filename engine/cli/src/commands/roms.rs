//! `prunus roms`: install and check the Atari ROMs (a build with `--features atari`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use miette::{Result, miette};

#[derive(Subcommand)]
pub enum RomsCommand {
    /// Copy the ROMs out of an ale-py wheel (downloaded from PyPI unless --wheel or --from is
    /// given) into the ROM directory, verifying each file's MD5.
    #[command(
        after_help = "Examples:\n  prunus roms install                      download ale-py's wheel from PyPI\n  \
prunus roms install --wheel ale_py-0.12.1-cp311-cp311-manylinux_2_28_x86_64.whl\n  \
prunus roms install --from .venv/lib/python3.11/site-packages/ale_py/roms"
    )]
    Install {
        /// An ale-py wheel on disk (no network needed).
        #[arg(long, conflicts_with = "from")]
        wheel: Option<PathBuf>,
        /// A directory of <game>.bin files, e.g. an installed ale_py/roms.
        #[arg(long)]
        from: Option<PathBuf>,
        /// The ale-py release to download.
        #[arg(long, default_value = DEFAULT_ALE_PY)]
        ale_py: String,
        /// The package index to download from.
        #[arg(long, default_value = "https://pypi.org")]
        index: String,
        /// Where to install (default: $PRUNUS_ROMS, else ~/.local/share/prunus/roms).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// List the supported games and whether each ROM is installed and verified.
    List {
        /// The ROM directory (default: $PRUNUS_ROMS, else ~/.local/share/prunus/roms).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

#[cfg(feature = "atari")]
const DEFAULT_ALE_PY: &str = prunus_env::atari::roms::ALE_PY_VERSION;
#[cfg(not(feature = "atari"))]
const DEFAULT_ALE_PY: &str = "0.12.1";

#[cfg(not(feature = "atari"))]
pub fn run(_cmd: RomsCommand) -> Result<ExitCode> {
    Err(miette!(
        help = "rebuild with `cargo install --path engine/cli --features atari` (ALE is C++: it \
                needs cmake and a C++ compiler)",
        "this prunus was built without Atari support"
    ))
}

#[cfg(feature = "atari")]
pub fn run(cmd: RomsCommand) -> Result<ExitCode> {
    use prunus_env::atari::roms::{self, Source};
    match cmd {
        RomsCommand::Install {
            wheel,
            from,
            ale_py,
            index,
            dir,
        } => {
            let dir = roms::dir(dir.as_deref());
            let source = match (wheel, from) {
                (Some(w), _) => Source::Wheel(w),
                (None, Some(d)) => Source::Dir(d),
                (None, None) => {
                    eprintln!("downloading the ale-py {ale_py} wheel from {index} ...");
                    Source::PyPi {
                        index,
                        version: ale_py,
                    }
                }
            };
            let report = roms::install(&source, &dir).map_err(|e| miette!("{e}"))?;
            eprintln!(
                "installed {} verified ROMs into {}",
                report.games.len(),
                dir.display()
            );
            if !report.missing.is_empty() {
                eprintln!("not in the source: {}", report.missing.join(", "));
            }
            if dir != roms::dir(None) {
                eprintln!("point prunus at them with PRUNUS_ROMS={}", dir.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        RomsCommand::List { dir } => {
            let dir = roms::dir(dir.as_deref());
            println!("ROM directory: {}", dir.display());
            let mut ok = 0;
            for game in roms::games() {
                let status = match roms::locate(game, &dir) {
                    Ok(_) => {
                        ok += 1;
                        "ok".to_string()
                    }
                    Err(prunus_env::EnvError::MissingRom { .. }) => "missing".to_string(),
                    Err(e) => format!("BAD: {e}"),
                };
                println!("{game:<20} {status}");
            }
            println!("{ok} of {} games ready", roms::games().count());
            Ok(ExitCode::SUCCESS)
        }
    }
}
