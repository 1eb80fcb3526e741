//! One libFuzzer binary for every target; `SKEIN_FUZZ_TARGET` names the one
//! to run. With `SKEIN_FUZZ_SEEDS_DIR` set, the target's seeds are written
//! there first, so a fresh corpus directory starts from valid inputs.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use skein_fuzz::Target;

fn chosen() -> &'static Target {
    static TARGET: OnceLock<&'static Target> = OnceLock::new();
    TARGET.get_or_init(|| {
        let name = std::env::var("SKEIN_FUZZ_TARGET").unwrap_or_default();
        let target = skein_fuzz::target(&name).unwrap_or_else(|| {
            let names: Vec<&str> = skein_fuzz::TARGETS.iter().map(|t| t.name).collect();
            panic!("SKEIN_FUZZ_TARGET={name:?} is not one of {names:?}")
        });
        if let Ok(dir) = std::env::var("SKEIN_FUZZ_SEEDS_DIR") {
            std::fs::create_dir_all(&dir).expect("creating the seeds directory");
            for (i, seed) in (target.seeds)().iter().enumerate() {
                std::fs::write(format!("{dir}/seed-{i}"), seed).expect("writing a seed");
            }
        }
        target
    })
}

fuzz_target!(
    init: {
        chosen();
    },
    |data: &[u8]| {
        (chosen().run)(data);
    }
);
