//! The registry file's TOML layout, parsed and rendered without I/O.
//!
//! Keys are hex strings so the file stays readable and editable by hand:
//!
//! ```toml
//! [[members]]
//! id = 0
//! address = "10.0.0.1:7000"
//! node_key = "0x…"     # 32-byte ed25519 public key
//! bls_key = "0x…"      # 48-byte compressed BLS12-381 public key
//! attestation = "0x…"  # optional 32-byte TEE measurement
//! ```
//!
//! Parsing validates the whole list (see [`crate::validate_members`]), so a list that comes out
//! of here can be acted on.

use alloy_primitives::{B256, Bytes, hex};
use serde::{Deserialize, Serialize};

use crate::{Member, MemberId, RegistryError, validate_members};

/// The comment that opens every file this crate writes.
const HEADER: &str = "\
# cobuild member registry. Nodes re-read this file while running; `cobuild registry add/remove`
# rewrite it whole (comments other than this one are not kept).
";

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct Document {
    #[serde(default)]
    members: Vec<Entry>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    id: MemberId,
    address: String,
    node_key: String,
    bls_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    attestation: Option<String>,
}

/// Parses and validates a registry file's text; the members come out sorted by id.
pub(crate) fn parse(text: &str) -> Result<Vec<Member>, RegistryError> {
    let document: Document = toml::from_str(text).map_err(|e| {
        let at = e
            .span()
            .map(|span| format!("line {}: ", line_of(text, span.start)))
            .unwrap_or_default();
        RegistryError::Invalid(format!("{at}{}", e.message().trim_end()))
    })?;
    let mut members = document
        .members
        .into_iter()
        .map(decode)
        .collect::<Result<Vec<_>, _>>()?;
    validate_members(&members)?;
    members.sort_by_key(|m| m.id);
    Ok(members)
}

/// The file's text for `members` (written in id order).
pub(crate) fn render(members: &[Member]) -> String {
    let mut sorted: Vec<&Member> = members.iter().collect();
    sorted.sort_by_key(|m| m.id);
    let document = Document {
        members: sorted
            .into_iter()
            .map(|m| Entry {
                id: m.id,
                address: m.address.clone(),
                node_key: m.node_key.to_string(),
                bls_key: m.bls_key.to_string(),
                attestation: m.attestation.map(|a| a.to_string()),
            })
            .collect(),
    };
    let body = toml::to_string(&document).expect("a document of strings and integers serializes");
    format!("{HEADER}\n{body}")
}

fn decode(entry: Entry) -> Result<Member, RegistryError> {
    let id = entry.id;
    let bytes = |field: &str, value: &str| {
        hex::decode(value).map_err(|_| {
            RegistryError::Invalid(format!("member {id}: {field} {value:?} is not hex"))
        })
    };
    let word = |field: &str, value: &str| {
        let raw = bytes(field, value)?;
        B256::try_from(raw.as_slice()).map_err(|_| {
            RegistryError::Invalid(format!(
                "member {id}: {field} must be 32 bytes, got {}",
                raw.len()
            ))
        })
    };
    Ok(Member {
        id,
        node_key: word("node_key", &entry.node_key)?,
        bls_key: Bytes::from(bytes("bls_key", &entry.bls_key)?),
        attestation: entry
            .attestation
            .as_deref()
            .map(|a| word("attestation", a))
            .transpose()?,
        address: entry.address,
    })
}

/// The 1-based line of byte offset `at` in `text`.
fn line_of(text: &str, at: usize) -> usize {
    text.as_bytes()[..at.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::tests::member;

    fn invalid(text: &str) -> String {
        match parse(text) {
            Err(RegistryError::Invalid(message)) => message,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn test_render_then_parse_gives_the_same_members() {
        let mut b = member(3, 2);
        b.attestation = Some(B256::repeat_byte(0xab));
        let members = vec![b, member(1, 1)];
        let text = render(&members);
        assert!(text.starts_with("# cobuild member registry"), "{text}");
        let back = parse(&text).expect("parses");
        assert_eq!(back, vec![members[1].clone(), members[0].clone()]);
    }

    #[test]
    fn test_empty_files_are_empty_registries() {
        assert_eq!(parse("").expect("empty"), vec![]);
        assert_eq!(parse(&render(&[])).expect("header only"), vec![]);
    }

    #[test]
    fn test_malformed_files_get_clear_messages() {
        let good = render(&[member(0, 1), member(1, 2)]);
        let m0 = member(0, 1);
        let node = m0.node_key.to_string();
        let bls = m0.bls_key.to_string();
        let cases = [
            (
                good.replacen(&node, "0xnothex", 1),
                "member 0: node_key \"0xnothex\" is not hex",
            ),
            (
                good.replacen(&node, &node[..64], 1),
                "member 0: node_key must be 32 bytes, got 31",
            ),
            (
                good.replacen(&bls, &bls[..96], 1),
                "member 0: bls_key must be 48 bytes, got 47",
            ),
            (
                good.replacen("id = 1", "id = 0", 1),
                "duplicate member id 0",
            ),
            (good.replacen("id = 1", "id = -1", 1), "line "),
            (
                good.replacen("address", "adress", 1),
                "unknown field `adress`",
            ),
            (good.replacen("id = 0\n", "", 1), "missing field `id`"),
            (format!("{good}[[members]]\nid = 2\n"), "missing field"),
            (
                good.replacen("id = 0\n", "id = 0\nattestation = \"0x12\"\n", 1),
                "member 0: attestation must be 32 bytes, got 1",
            ),
            ("members = 3".to_owned(), "line 1: invalid type"),
        ];
        for (text, expected) in cases {
            let message = invalid(&text);
            assert!(message.contains(expected), "{message:?} lacks {expected:?}");
        }
    }

    #[test]
    fn test_hand_written_files_parse() {
        let m = member(7, 9);
        let text = format!(
            "# our network\n[[members]]\nid = 7\naddress = \"{}\"\nnode_key = \"{}\"\n\
             bls_key = \"{}\"  # no 0x is fine too\n",
            m.address,
            m.node_key,
            hex::encode(&m.bls_key),
        );
        assert_eq!(parse(&text).expect("parses"), vec![m]);
    }
}
