//! Shortens the wasm-bindgen import and export names shared by the glue and the wasm.
//!
//! Names like `__wbg_addEventListener_3f7d8a21c09b5e44` appear once in the wasm's import
//! section and once in the glue; their hashes do not compress, and together they cost ~2 KB
//! of the 60 KB brotli budget. Each becomes a short name (`a`, `b`, ... `aa`) in both files.
//! Only the two name sections are re-encoded; every other section is copied byte for byte.

use std::collections::{HashMap, HashSet};
use wasm_encoder::reencode::{Reencode, RoundtripReencoder};
use wasm_encoder::{ExportSection, ImportSection, Module, RawSection};
use wasmparser::{Parser, Payload};

/// Returns the wasm and the glue with every import and export renamed consistently.
/// Fails if a name is missing from the glue, so a wasm-bindgen change cannot break it silently.
pub fn shorten(wasm: &[u8], glue: &str) -> Result<(Vec<u8>, String), String> {
    let err = |e: wasmparser::BinaryReaderError| format!("shorten names: {e}");
    let mut renames: HashMap<String, String> = HashMap::new();
    let mut fresh = names();
    let mut short_for = |name: &str, renames: &mut HashMap<String, String>| {
        renames
            .entry(name.to_string())
            .or_insert_with(|| fresh.next().expect("names never run out"))
            .clone()
    };
    let mut imports = HashSet::new();
    let mut module = Module::new();
    for payload in Parser::new(0).parse_all(wasm) {
        let payload = payload.map_err(err)?;
        match &payload {
            Payload::ImportSection(reader) => {
                let mut section = ImportSection::new();
                for import in reader.clone().into_imports() {
                    let import = import.map_err(err)?;
                    let ty = RoundtripReencoder
                        .entity_type(import.ty)
                        .map_err(|e| format!("shorten names: {e}"))?;
                    section.import(import.module, &short_for(import.name, &mut renames), ty);
                    imports.insert(import.name.to_string());
                }
                module.section(&section);
            }
            Payload::ExportSection(reader) => {
                let mut section = ExportSection::new();
                for export in reader.clone() {
                    let export = export.map_err(err)?;
                    let kind = RoundtripReencoder
                        .export_kind(export.kind)
                        .map_err(|e| format!("shorten names: {e}"))?;
                    section.export(&short_for(export.name, &mut renames), kind, export.index);
                }
                module.section(&section);
            }
            other => {
                if let Some((id, range)) = other.as_section() {
                    let range = range.start as usize..range.end as usize;
                    module.section(&RawSection {
                        id,
                        data: &wasm[range],
                    });
                }
            }
        }
    }
    Ok((module.finish(), rename_in_glue(glue, &renames, &imports)?))
}

/// Replaces each whole identifier of `renames` in the glue. Every import must be defined there
/// (else instantiation would fail later, less clearly); an export the glue never reads (e.g.
/// `__wbindgen_free`) is renamed all the same.
fn rename_in_glue(
    glue: &str,
    renames: &HashMap<String, String>,
    imports: &HashSet<String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(glue.len());
    let mut seen = HashSet::new();
    let mut rest = glue;
    while let Some(start) = rest.find(is_ident) {
        out.push_str(&rest[..start]);
        rest = &rest[start..];
        let end = rest.find(|c: char| !is_ident(c)).unwrap_or(rest.len());
        let word = &rest[..end];
        // Only an export read as `wasm.name` and an import defined as `name:` in the imports
        // object are renamed; `exports.start` or a local that shares a name keeps it.
        let is_export_use = out.ends_with("wasm.") && !out[..out.len() - 5].ends_with(is_ident);
        let is_import_key = rest[end..].starts_with(':');
        match renames.get(word) {
            Some(short) if is_export_use || is_import_key => {
                seen.insert(word);
                out.push_str(short);
            }
            _ => out.push_str(word),
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    let mut missing: Vec<&str> = imports
        .iter()
        .map(String::as_str)
        .filter(|n| !seen.contains(n))
        .collect();
    missing.sort();
    match missing.as_slice() {
        [] => Ok(out),
        _ => Err(format!(
            "shorten names: the glue never names {} (did wasm-bindgen change its output?)",
            missing.join(", ")
        )),
    }
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '$'
}

/// a, b, ..., Z, aa, ab, ...: short JS identifiers that are also valid wasm names.
fn names() -> impl Iterator<Item = String> {
    const LETTERS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    (0..).map(|mut i: usize| {
        let mut name = Vec::new();
        loop {
            name.push(LETTERS[i % LETTERS.len()]);
            i /= LETTERS.len();
            if i == 0 {
                break;
            }
            i -= 1;
        }
        String::from_utf8(name).expect("ascii")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_short() {
        let first: Vec<String> = names().take(53 * 52).collect();
        let unique: std::collections::HashSet<&String> = first.iter().collect();
        assert_eq!(unique.len(), first.len());
        assert_eq!(first[0], "a");
        assert_eq!(first[52], "aa");
    }

    #[test]
    fn renames_properties_only_and_reports_missing_names() {
        let renames = HashMap::from([
            ("__wbg_log_1".to_string(), "a".to_string()),
            ("widget_new".to_string(), "b".to_string()),
        ]);
        let glue = "const i={__wbg_log_1:function(){}};wasm.widget_new();e.widget_new=widget_new;";
        let imports = HashSet::from(["__wbg_log_1".to_string()]);
        assert_eq!(
            rename_in_glue(glue, &renames, &imports).unwrap(),
            "const i={a:function(){}};wasm.b();e.widget_new=widget_new;"
        );
        let err = rename_in_glue("wasm.widget_new()", &renames, &imports).unwrap_err();
        assert!(err.contains("__wbg_log_1"), "{err}");
    }
}
