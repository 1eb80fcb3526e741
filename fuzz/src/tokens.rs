//! The tokens file: any text either parses into entries that are each
//! valid, or is refused with an error; what parses survives being written
//! back with `to_toml` (what `skein token create` appends) and read again.

use skein_model::security::{TokensFile, hash_token};

pub fn tokens_file(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(file) = TokensFile::parse(text) else { return };
    let written: String = file.tokens.iter().map(|entry| entry.to_toml()).collect();
    let reread = TokensFile::parse(&written)
        .unwrap_or_else(|error| panic!("entries written by to_toml do not parse ({error}):\n{written}"));
    assert_eq!(reread, file, "entries changed on the way through to_toml:\n{written}");
}

pub fn tokens_file_seeds() -> Vec<Vec<u8>> {
    let hash = hash_token("skn_fuzz");
    vec![
        format!("[[tokens]]\ntenant = \"team-a\"\nscopes = [\"ingest\", \"query\"]\nsha256 = \"{hash}\"\nname = \"ci \\\"exporter\\\"\"\nexpires_at = \"2027-01-31T00:00:00Z\"\n").into_bytes(),
        format!("tokens = [{{ tenant = \"default\", scopes = [\"admin\"], sha256 = \"{hash}\" }}]\n").into_bytes(),
        Vec::new(),
    ]
}
