//! Translations: Fluent message files (`locales/<lang>/*.ftl`, compiled in), Japanese by
//! default and English by the visible switch (`?lang=` sets the `lang` cookie).

use std::sync::LazyLock;

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};
use unic_langid::LanguageIdentifier;

/// A language the pages are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    Ja,
    En,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Self::Ja => "ja",
            Self::En => "en",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ja" => Some(Self::Ja),
            "en" => Some(Self::En),
            _ => None,
        }
    }

    /// Picks the Japanese or English one of a pair (for hub texts such as service names).
    pub fn pick<'a>(self, ja: &'a str, en: &'a str) -> &'a str {
        match self {
            Self::Ja => ja,
            Self::En if en.is_empty() => ja,
            Self::En => en,
        }
    }
}

/// The message files, one list per language; every message must exist in both.
const JA: &[&str] = &[
    include_str!("../locales/ja/common.ftl"),
    include_str!("../locales/ja/portal.ftl"),
    include_str!("../locales/ja/console.ftl"),
    include_str!("../locales/ja/identity.ftl"),
    include_str!("../locales/ja/rights.ftl"),
    include_str!("../locales/ja/emergency.ftl"),
    include_str!("../locales/ja/routing.ftl"),
    include_str!("../locales/ja/disclosure.ftl"),
    include_str!("../locales/ja/counter.ftl"),
];
const EN: &[&str] = &[
    include_str!("../locales/en/common.ftl"),
    include_str!("../locales/en/portal.ftl"),
    include_str!("../locales/en/console.ftl"),
    include_str!("../locales/en/identity.ftl"),
    include_str!("../locales/en/rights.ftl"),
    include_str!("../locales/en/emergency.ftl"),
    include_str!("../locales/en/routing.ftl"),
    include_str!("../locales/en/disclosure.ftl"),
    include_str!("../locales/en/counter.ftl"),
];

struct Bundles {
    ja: FluentBundle<FluentResource>,
    en: FluentBundle<FluentResource>,
}

fn bundle(lang: &str, sources: &[&str]) -> FluentBundle<FluentResource> {
    let id: LanguageIdentifier = lang.parse().unwrap_or_default();
    let mut bundle = FluentBundle::new_concurrent(vec![id]);
    // No Unicode isolation marks around arguments: the pages set `dir` themselves.
    bundle.set_use_isolating(false);
    for source in sources {
        let resource =
            FluentResource::try_new((*source).to_owned()).unwrap_or_else(|(r, errors)| {
                tracing::error!(
                    lang,
                    errors = errors.len(),
                    "a message file has syntax errors"
                );
                r
            });
        if let Err(errors) = bundle.add_resource(resource) {
            tracing::error!(lang, errors = errors.len(), "duplicate messages");
        }
    }
    bundle
}

static BUNDLES: LazyLock<Bundles> = LazyLock::new(|| Bundles {
    ja: bundle("ja", JA),
    en: bundle("en", EN),
});

/// The translator handed to templates: `t.get("key")`, `t.arg("key", "name", value)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tr {
    pub lang: Lang,
}

impl Tr {
    pub fn new(lang: Lang) -> Self {
        Self { lang }
    }

    fn bundle(&self) -> &'static FluentBundle<FluentResource> {
        match self.lang {
            Lang::Ja => &BUNDLES.ja,
            Lang::En => &BUNDLES.en,
        }
    }

    fn format(&self, id: &str, args: Option<&FluentArgs>) -> String {
        let bundle = self.bundle();
        let Some(pattern) = bundle.get_message(id).and_then(|m| m.value()) else {
            tracing::warn!(id, lang = self.lang.code(), "missing message");
            return id.to_owned();
        };
        let mut errors = Vec::new();
        let text = bundle.format_pattern(pattern, args, &mut errors);
        if !errors.is_empty() {
            tracing::warn!(id, lang = self.lang.code(), "message formatting failed");
        }
        text.into_owned()
    }

    /// The message `id`.
    pub fn get(&self, id: &str) -> String {
        self.format(id, None)
    }

    /// The message `id` with one argument.
    pub fn arg(&self, id: &str, name: &str, value: &dyn std::fmt::Display) -> String {
        let mut args = FluentArgs::new();
        args.set(name, FluentValue::from(value.to_string()));
        self.format(id, Some(&args))
    }

    /// The message `id` with two arguments.
    pub fn arg2(
        &self,
        id: &str,
        a: (&str, &dyn std::fmt::Display),
        b: (&str, &dyn std::fmt::Display),
    ) -> String {
        let mut args = FluentArgs::new();
        args.set(a.0, FluentValue::from(a.1.to_string()));
        args.set(b.0, FluentValue::from(b.1.to_string()));
        self.format(id, Some(&args))
    }

    /// The message `id` with any number of arguments.
    pub fn args(&self, id: &str, values: &[(&str, &dyn std::fmt::Display)]) -> String {
        let mut args = FluentArgs::new();
        for (name, value) in values {
            args.set(*name, FluentValue::from(value.to_string()));
        }
        self.format(id, Some(&args))
    }

    /// The message `id` with a number argument (for plural rules).
    pub fn count(&self, id: &str, name: &str, n: usize) -> String {
        let mut args = FluentArgs::new();
        args.set(name, FluentValue::from(n));
        self.format(id, Some(&args))
    }

    /// Whether the message exists (for optional texts such as denial reasons).
    pub fn has(&self, id: &str) -> bool {
        self.bundle().has_message(id)
    }

    /// `id` if it exists, else `fallback`'s message.
    pub fn get_or(&self, id: &str, fallback: &str) -> String {
        if self.has(id) {
            self.get(id)
        } else {
            self.get(fallback)
        }
    }

    /// A text of the hub's in this language.
    pub fn pick<'a>(&self, ja: &'a str, en: &'a str) -> &'a str {
        self.lang.pick(ja, en)
    }
}

/// Every message id of a language's files (for the test that both languages say everything).
pub fn message_ids(lang: Lang) -> Vec<String> {
    let sources = match lang {
        Lang::Ja => JA,
        Lang::En => EN,
    };
    // A message starts a line with its id and `=` (attributes and terms start otherwise).
    let mut ids: Vec<String> = sources
        .iter()
        .flat_map(|s| s.lines())
        .filter_map(|line| {
            let (id, _) = line.split_once('=')?;
            let id = id.trim_end();
            let ok = id.starts_with(|c: char| c.is_ascii_lowercase())
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            ok.then(|| id.to_owned())
        })
        .collect();
    ids.sort();
    ids
}

/// Whether every message file of every language parses without errors.
pub fn all_files_parse() -> bool {
    JA.iter()
        .chain(EN)
        .all(|s| FluentResource::try_new((*s).to_owned()).is_ok())
}
