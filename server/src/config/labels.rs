//! `[deployment.labels.<lang>]`: the widget's words per language, and which one a request gets.

use std::collections::BTreeMap;

use em_protocol::Branding;
use serde::Deserialize;

use super::BrandingConfig;

/// The text keys of `[deployment.branding]`, each overriding the default branding when set.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelsConfig {
    pub title: Option<String>,
    pub greeting: Option<String>,
    pub agent_display_name: Option<String>,
    pub button_label: Option<String>,
    pub input_placeholder: Option<String>,
}

/// `en-US`, `en_us` and `EN_US` are the same tag: compared lowercase with `_`.
pub fn normalize(tag: &str) -> String {
    tag.trim().replace('-', "_").to_ascii_lowercase()
}

/// Letters, digits, `-` and `_`, starting with a letter, at most 35 (the longest BCP 47 tags).
pub fn valid_tag(tag: &str) -> bool {
    tag.len() <= 35
        && tag.starts_with(|c: char| c.is_ascii_alphabetic())
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `[deployment.branding] language` and the `[deployment.labels]` tags: well-formed, and no
/// two labels for the same language. Errors are (field path, what is wrong).
pub fn validate(
    branding: &BrandingConfig,
    labels: &BTreeMap<String, LabelsConfig>,
) -> Result<(), (String, String)> {
    let bad = |tag: &str| format!("{tag:?} is not a language tag (like en, fr or pt_BR)");
    if !valid_tag(&branding.language) {
        return Err(("branding.language".into(), bad(&branding.language)));
    }
    let mut seen = std::collections::HashMap::new();
    for tag in labels.keys() {
        if !valid_tag(tag) {
            return Err((format!("labels.{tag}"), bad(tag)));
        }
        if let Some(other) = seen.insert(normalize(tag), tag) {
            return Err((
                format!("labels.{tag}"),
                format!("the same language as labels.{other}"),
            ));
        }
    }
    Ok(())
}

impl super::Deployment {
    /// The branding the config endpoint sends for the `language` query parameter.
    pub fn branding_for(&self, language: Option<&str>) -> Branding {
        resolve(&self.branding, &self.labels, language)
    }
}

/// The branding for `requested`: the labels with that exact tag, else those of its primary
/// subtag (`pt_BR` → `pt`), else the default branding. `language` says which one it is.
pub fn resolve(
    branding: &BrandingConfig,
    labels: &BTreeMap<String, LabelsConfig>,
    requested: Option<&str>,
) -> Branding {
    let mut out = Branding::from(branding);
    let Some(requested) = requested.map(normalize).filter(|r| !r.is_empty()) else {
        return out;
    };
    let primary = requested.split('_').next().unwrap_or_default();
    let find = |want: &str| labels.iter().find(|(tag, _)| normalize(tag) == want);
    let default = normalize(&branding.language);
    // The default language is a candidate too, so `en_US` on an `en` deployment with `en_US`
    // labels gets them, and `en_GB` gets the default rather than nothing special.
    let chosen = find(&requested).or_else(|| {
        if requested == default {
            None
        } else {
            find(primary)
        }
    });
    if let Some((tag, l)) = chosen {
        let set = |field: &mut String, value: &Option<String>| {
            if let Some(v) = value {
                field.clone_from(v);
            }
        };
        set(&mut out.title, &l.title);
        set(&mut out.greeting, &l.greeting);
        set(&mut out.agent_display_name, &l.agent_display_name);
        set(&mut out.button_label, &l.button_label);
        set(&mut out.input_placeholder, &l.input_placeholder);
        out.language.clone_from(tag);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    // Exact tag, then primary subtag (either separator, any case), else the default.
    fn language_resolution() {
        let branding = BrandingConfig::default();
        let labels: BTreeMap<String, LabelsConfig> = toml::from_str(
            "[fr]\ntitle = \"Discutez avec nous\"\n[pt_BR]\ntitle = \"Fale conosco\"\n[pt]\ntitle = \"Fale connosco\"",
        )
        .unwrap();
        let pick = |lang: Option<&str>| {
            let b = resolve(&branding, &labels, lang);
            (b.language, b.title)
        };
        let fr = ("fr".to_string(), "Discutez avec nous".to_string());
        assert_eq!(pick(Some("fr")), fr);
        assert_eq!(pick(Some("fr-CA")), fr);
        assert_eq!(pick(Some("FR_fr")), fr);
        assert_eq!(pick(Some("pt-br")).1, "Fale conosco");
        assert_eq!(pick(Some("pt_PT")).1, "Fale connosco");
        let default = ("en".to_string(), "Chat with us".to_string());
        assert_eq!(pick(Some("en_US")), default);
        assert_eq!(pick(Some("ja")), default);
        assert_eq!(pick(None), default);
        assert_eq!(pick(Some("")), default);
        // Keys a language does not set keep the default's words.
        let b = resolve(&branding, &labels, Some("fr"));
        assert_eq!(b.input_placeholder, "Type your message");
    }

    #[test]
    // Malformed tags and two labels for one language are refused with the field.
    fn tags_are_validated() {
        let labels = |t: &str| toml::from_str::<BTreeMap<String, LabelsConfig>>(t).unwrap();
        let ok = BrandingConfig::default();
        assert_eq!(validate(&ok, &labels("[fr]\n[pt_BR]")), Ok(()));
        assert_eq!(
            validate(&ok, &labels("[pt-BR]\n[pt_br]")),
            Err((
                "labels.pt_br".into(),
                "the same language as labels.pt-BR".into()
            ))
        );
        assert_eq!(
            validate(&ok, &labels("[\"f r\"]")).unwrap_err().0,
            "labels.f r"
        );
        let bad = BrandingConfig {
            language: "".into(),
            ..BrandingConfig::default()
        };
        assert_eq!(
            validate(&bad, &labels("")).unwrap_err().0,
            "branding.language"
        );
        assert!(toml::from_str::<BTreeMap<String, LabelsConfig>>("[fr]\ncolor = \"red\"").is_err());
    }
}
