//! Validating a real document against its committed schema, for the tools'
//! tests (feature `schema-check`, enabled only in their dev-dependencies):
//! the one place that knows where `docs/schema/` is and how to read it.

use super::schema_dir;

/// Checks the JSON text `document` against `docs/schema/{file}`; the error
/// names the file and every violation with its place in the document.
pub fn validate_against_schema(file: &str, document: &str) -> Result<(), String> {
    let path = schema_dir().join(file);
    let schema =
        std::fs::read_to_string(&path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let schema: serde_json::Value =
        serde_json::from_str(&schema).map_err(|e| format!("{}: {e}", path.display()))?;
    let validator = jsonschema::validator_for(&schema)
        .map_err(|e| format!("{} is not a valid schema: {e}", path.display()))?;
    let value: serde_json::Value =
        serde_json::from_str(document).map_err(|e| format!("not JSON ({e}): {document:?}"))?;
    let errors: Vec<String> = validator
        .iter_errors(&value)
        .map(|e| format!("{} at {:?}", e, e.instance_path().to_string()))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "does not match docs/schema/{file}: {}; document: {document}",
            errors.join("; ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_that_breaks_its_schema_is_refused_with_the_place() {
        assert_eq!(
            validate_against_schema("admin-send.json", r#"{"id":1,"connections":2}"#),
            Ok(())
        );
        let err = validate_against_schema("admin-send.json", r#"{"id":-1}"#).unwrap_err();
        assert!(
            err.contains("\"connections\" is a required property"),
            "{err}"
        );
        assert!(err.contains("at \"/id\""), "{err}");
        assert!(validate_against_schema("no-such.json", "{}")
            .unwrap_err()
            .starts_with("reading "));
    }
}
