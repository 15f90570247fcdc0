//! Records the cargo profile the benchmark is built with, so that a report says which build its
//! figures come from: `maxperf` runs the builds about 10 % faster than `release`.

fn main() {
    // A build script is told only whether it optimises (`PROFILE` is `release` for every
    // profile that inherits from it); the profile's own name is the folder its outputs go to,
    // `<target dir>/[<triple>/]<profile>/build/<package>-<hash>/out`.
    let profile = std::env::var("OUT_DIR")
        .ok()
        .and_then(|out| {
            let dir = std::path::Path::new(&out).ancestors().nth(3)?;
            dir.file_name()?.to_str().map(str::to_owned)
        })
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=COBUILD_BUILD_PROFILE={profile}");
    println!("cargo:rerun-if-changed=build.rs");
}
