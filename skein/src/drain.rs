//! `skein storage --drain`: asks a running storage node (through its admin
//! port) to hand every shard it holds to the other nodes, and waits until
//! it holds none. The node stays up, empty, until it is stopped.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::Value;

use skein_bench::client::ClientSecurity;

/// How often the node is asked whether it still holds shards.
const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// The admin URL of a node listening on `listen` (over TLS when `tls`):
/// loopback when it listens on every interface (the command runs beside
/// the node).
pub fn local_admin_url(listen: SocketAddr, tls: bool) -> String {
    let host = match listen.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => "127.0.0.1".to_owned(),
        ip if ip.is_unspecified() => "[::1]".to_owned(),
        ip if ip.is_ipv6() => format!("[{ip}]"),
        ip => ip.to_string(),
    };
    let scheme = if tls { "https" } else { "http" };
    format!("{scheme}://{host}:{}", listen.port())
}

/// Starts draining the node at `admin_url` and waits until it holds no
/// shard, printing each change; fails when the node refuses (no object
/// store: its shards cannot move) or still holds shards after `timeout`.
/// `security` says how to reach a node with `[tls]` (`--ca`) and `[auth]`
/// (`--token` of the `admin` scope).
pub async fn drain(admin_url: &str, timeout: Duration, security: &ClientSecurity) -> anyhow::Result<()> {
    let url = format!("{}/admin/drain", admin_url.trim_end_matches('/'));
    let client = security.http_client(skein_bench::client::http_client_builder().timeout(Duration::from_secs(10)))?;
    let response = client.post(&url).send().await.with_context(|| format!("asking {url} to drain"))?;
    let code = response.status();
    let body = response.text().await.with_context(|| format!("reading the answer of {url}"))?;
    if !code.is_success() {
        bail!("{url} refused to drain ({code}): {body}");
    }
    let deadline = Instant::now() + timeout;
    let mut held: Option<Vec<Value>> = None;
    loop {
        let response = client.get(&url).send().await.with_context(|| format!("asking {url}"))?;
        let code = response.status();
        let body: Value = response.json().await.with_context(|| format!("reading the answer of {url}"))?;
        if !code.is_success() {
            bail!("{url} answered {code}: {body}");
        }
        let shards = body["shards"].as_array().cloned().unwrap_or_default();
        if held.as_ref() != Some(&shards) {
            println!("draining: {} shard(s) still held {}", shards.len(), Value::Array(shards.clone()));
            held = Some(shards.clone());
        }
        if shards.is_empty() {
            println!("drained: the node holds no shard; stop it when convenient");
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("the node still holds shards {} after {timeout:?}", Value::Array(shards));
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_urls_use_loopback_for_wildcards() {
        assert_eq!(local_admin_url("0.0.0.0:7401".parse().expect("addr"), false), "http://127.0.0.1:7401");
        assert_eq!(local_admin_url("[::]:7401".parse().expect("addr"), false), "http://[::1]:7401");
        assert_eq!(local_admin_url("10.0.0.5:80".parse().expect("addr"), false), "http://10.0.0.5:80");
        assert_eq!(local_admin_url("[fe80::1]:80".parse().expect("addr"), true), "https://[fe80::1]:80");
    }
}
