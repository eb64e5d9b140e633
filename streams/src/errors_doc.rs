//! The error-code table for people, `docs/errors.md`, generated from [`ErrorCode`] (its
//! status and meaning), so it cannot drift: a test compares the committed file with what
//! this module renders now (`UPDATE_CATALOGUE=1 cargo test -p streams errors_doc`
//! rewrites it). The OpenAPI description links to it.

use std::fmt::Write as _;

use crate::codes::ErrorCode;

/// `docs/errors.md`.
pub fn markdown() -> String {
    let mut m = String::from(
        "# Error codes\n\n\
         <!-- Generated from streams/src/codes.rs by `streams::errors_doc` \
         (UPDATE_CATALOGUE=1 cargo test -p streams errors_doc); do not edit. -->\n\n\
         Every error answer, from the gateway or a worker, has the body\n\
         `{\"error\": {\"code\", \"message\", \"details\"?}}`. The `code` is stable and one of\n\
         the table below; the HTTP status always follows from it; the `message` is for people\n\
         and may change; `details`, when present, carries facts such as the seats that were\n\
         taken. Every 503 carries `Retry-After`.\n\n\
         | code | HTTP status | meaning |\n|---|---|---|\n",
    );
    let mut codes = ErrorCode::ALL.to_vec();
    codes.sort_by_key(|c| (c.status(), c.as_str()));
    for c in codes {
        let _ = writeln!(m, "| `{}` | {} | {} |", c.as_str(), c.status(), c.meaning());
    }
    m.push_str(
        "\nThe `command_*` codes answer only commands that other systems publish straight to\n\
         NATS (see [commands.md](commands.md)); the HTTP API never answers them.\n",
    );
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::path::PathBuf;

    #[test]
    fn the_list_of_codes_has_every_code_once() {
        let schema = schemars::schema_for!(ErrorCode).to_value();
        let mut named = BTreeSet::new();
        let mut collect = |v: &serde_json::Value| {
            if let Some(s) = v.as_str() {
                named.insert(s.to_string());
            }
        };
        for v in schema["enum"].as_array().into_iter().flatten() {
            collect(v);
        }
        for v in schema["oneOf"].as_array().into_iter().flatten() {
            collect(&v["const"]);
            for e in v["enum"].as_array().into_iter().flatten() {
                collect(e);
            }
        }
        let listed: BTreeSet<String> = ErrorCode::ALL
            .iter()
            .map(|c| c.as_str().to_string())
            .collect();
        assert_eq!(listed.len(), ErrorCode::ALL.len(), "a code is listed twice");
        assert_eq!(listed, named, "ErrorCode::ALL must list every variant");
    }

    #[test]
    fn the_committed_error_table_is_current() {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/errors.md");
        let text = markdown();
        if std::env::var_os("UPDATE_CATALOGUE").is_some() {
            std::fs::write(&path, &text).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == text,
            "docs/errors.md is stale: UPDATE_CATALOGUE=1 cargo test -p streams errors_doc"
        );
    }
}
