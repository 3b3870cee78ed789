//! `ale-sys` builds ALE as a static C++ library but does not link the C++ runtime it needs.
fn main() {
    if std::env::var_os("CARGO_FEATURE_ATARI").is_some() {
        println!("cargo:rustc-link-lib=stdc++");
    }
}
