//! Trace and span IDs: validation and lowercase hex.

/// Lowercase hex of an ID (any length; empty gives "").
pub fn hex_lower(bytes: &[u8]) -> String {
    const_hex::encode(bytes)
}

/// A valid trace ID is 16 bytes and not all zero (OTLP).
pub fn valid_trace_id(id: &[u8]) -> bool {
    id.len() == 16 && id.iter().any(|b| *b != 0)
}

/// A valid span ID is 8 bytes and not all zero (OTLP).
pub fn valid_span_id(id: &[u8]) -> bool {
    id.len() == 8 && id.iter().any(|b| *b != 0)
}

/// Parses a hex ID of exactly `len` bytes; accepts upper or lower case.
pub fn parse_hex_id(text: &str, len: usize) -> Option<Vec<u8>> {
    if text.len() != len * 2 {
        return None;
    }
    const_hex::decode(text).ok()
}

/// Normalizes a user-supplied trace ID to the stored form (32 lowercase hex
/// digits). Shorter IDs (64-bit trace IDs from older tracers) are left-padded.
pub fn normalize_trace_id(text: &str) -> Option<String> {
    let text = text.trim();
    if text.is_empty() || text.len() > 32 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let padded = format!("{:0>32}", text.to_ascii_lowercase());
    valid_trace_id(&const_hex::decode(&padded).ok()?).then_some(padded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_ids() {
        assert!(valid_trace_id(&[1; 16]));
        assert!(!valid_trace_id(&[0; 16]));
        assert!(!valid_trace_id(&[1; 15]));
        assert!(valid_span_id(&[1; 8]));
        assert!(!valid_span_id(&[0; 8]));
        assert!(!valid_span_id(&[]));
    }

    #[test]
    fn normalizes_trace_ids() {
        assert_eq!(normalize_trace_id("ABCDEF").as_deref(), Some("00000000000000000000000000abcdef"));
        // Grafana trims leading zeros (29 digits here); 64-bit tracers send 16.
        let trimmed = "abc0123456789abcdef0123456789";
        assert_eq!(normalize_trace_id(trimmed), Some(format!("000{trimmed}")));
        assert_eq!(normalize_trace_id("0123456789abcdef"), Some(format!("{:0>32}", "0123456789abcdef")));
        assert_eq!(normalize_trace_id(&"0".repeat(32)), None);
        assert_eq!(normalize_trace_id("xyz"), None);
        assert_eq!(normalize_trace_id(&"a".repeat(33)), None);
        assert_eq!(hex_lower(&[0xAB, 0x01]), "ab01");
        assert_eq!(parse_hex_id("ab01", 2), Some(vec![0xab, 0x01]));
    }
}
