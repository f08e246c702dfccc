//! Node configuration (`config.toml`): `NodeConfig::parse` (what `load` runs after the read,
//! with `validate`), then the addresses the node derives from it. A valid config survives its
//! own TOML.
#![no_main]

use std::path::Path;

use cradle_genesis::NodeConfig;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(config) = NodeConfig::parse(text, Path::new("config.toml")) else {
        return;
    };
    let _ = config.api_listen();
    let _ = config.metrics_listen();
    let _ = config.data_dir_in(Path::new("/home"));
    let toml = match config.to_toml() {
        Ok(toml) => toml,
        Err(e) => panic!("a valid config does not serialise: {e}"),
    };
    match NodeConfig::parse(&toml, Path::new("again.toml")) {
        Ok(again) => assert_eq!(again, config, "the config changed through its own TOML"),
        Err(e) => panic!("a valid config does not re-parse from its own TOML: {e}\n{toml}"),
    }
});
