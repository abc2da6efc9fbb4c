//! `docs/configuration.md` against the code: every setting `Settings` reads is documented, every
//! documented setting is one it reads, and each row gives the default of `config/default.toml`
//! and the variables that set it.
//!
//! The reference's setting tables have the header `| Setting | Variables | Default | Meaning |`
//! and one row per setting: its full dotted key in backticks (`[]` marks the entries of a list
//! of tables, as in `token.previous[].kid`), its variables in backticks (or `files only`), its
//! default as the TOML literal of `config/default.toml` in backticks (or words, for settings
//! `default.toml` leaves unset), and what it means.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use config::{File, FileFormat, Map, Source, Value, ValueKind};
use serde::Deserialize;
use serde::de::value::{Error, StrDeserializer};
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

use super::{DEFAULTS, NAMED_VARIABLES, Settings};

const REFERENCE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/configuration.md");

/// Deserializes a type from nothing to learn its settings: each struct gives its field names,
/// each leaf (a value that is not a table) a placeholder, and its dotted path is recorded.
struct Keys<'a> {
    path: String,
    found: &'a RefCell<BTreeSet<String>>,
}

impl<'a> Keys<'a> {
    fn field(&self, name: &str) -> Keys<'a> {
        let path = if self.path.is_empty() {
            name.to_owned()
        } else {
            format!("{}.{name}", self.path)
        };
        Keys {
            path,
            found: self.found,
        }
    }

    /// A list of plain values is one setting; a list of tables has settings per entry.
    fn entry(&self) -> Keys<'a> {
        Keys {
            path: format!("{}[]", self.path),
            found: self.found,
        }
    }

    fn leaf(&self) {
        self.found
            .borrow_mut()
            .insert(self.path.trim_end_matches("[]").to_owned());
    }
}

macro_rules! leaves {
    ($($method:ident => $visit:ident($($value:expr)?)),* $(,)?) => {
        $(fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            self.leaf();
            visitor.$visit($($value)?)
        })*
    };
}

impl<'de> de::Deserializer<'de> for Keys<'_> {
    type Error = Error;

    // `deserialize_any` is what untagged enums (a list or comma-separated text) ask for.
    leaves! {
        deserialize_any => visit_str(""),
        deserialize_bool => visit_bool(false),
        deserialize_i8 => visit_i64(0),
        deserialize_i16 => visit_i64(0),
        deserialize_i32 => visit_i64(0),
        deserialize_i64 => visit_i64(0),
        deserialize_u8 => visit_u64(0),
        deserialize_u16 => visit_u64(0),
        deserialize_u32 => visit_u64(0),
        deserialize_u64 => visit_u64(0),
        deserialize_f32 => visit_f64(0.0),
        deserialize_f64 => visit_f64(0.0),
        deserialize_char => visit_char(' '),
        deserialize_str => visit_str(""),
        deserialize_string => visit_str(""),
        deserialize_bytes => visit_bytes(&[]),
        deserialize_byte_buf => visit_bytes(&[]),
        deserialize_unit => visit_unit(),
        deserialize_identifier => visit_str(""),
        deserialize_ignored_any => visit_unit(),
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_some(self)
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_seq(Entry(Some(self.entry())))
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.leaf();
        visitor.visit_map(Fields {
            keys: self,
            fields: [].iter(),
            current: None,
        })
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_map(Fields {
            keys: self,
            fields: fields.iter(),
            current: None,
        })
    }

    /// A name among fixed ones (`log.format`): a leaf, read as its first variant.
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.leaf();
        let first = variants.first().ok_or_else(|| {
            de::Error::custom(format!("`{}` is an enum without variants", self.path))
        })?;
        visitor.visit_enum(StrDeserializer::<Error>::new(first))
    }
}

/// A struct's fields, each value read at the field's path.
struct Fields<'a> {
    keys: Keys<'a>,
    fields: std::slice::Iter<'static, &'static str>,
    current: Option<&'static str>,
}

impl<'de> MapAccess<'de> for Fields<'_> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        let Some(&field) = self.fields.next() else {
            return Ok(None);
        };
        self.current = Some(field);
        seed.deserialize(StrDeserializer::<Error>::new(field))
            .map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let field = self
            .current
            .take()
            .ok_or_else(|| de::Error::custom("a value asked before its key"))?;
        seed.deserialize(self.keys.field(field))
    }
}

/// A list with one entry, read at the list's path plus `[]`.
struct Entry<'a>(Option<Keys<'a>>);

impl<'de> SeqAccess<'de> for Entry<'_> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        self.0.take().map(|keys| seed.deserialize(keys)).transpose()
    }
}

/// Every setting `Settings` reads, by dotted key.
fn settings_read() -> BTreeSet<String> {
    let found = RefCell::new(BTreeSet::new());
    Settings::deserialize(Keys {
        path: String::new(),
        found: &found,
    })
    .expect("Settings deserializes from placeholders");
    found.into_inner()
}

/// A value of `default.toml` written as TOML.
fn toml_literal(value: &Value) -> String {
    match &value.kind {
        ValueKind::Nil => "nil".to_owned(),
        ValueKind::Boolean(b) => b.to_string(),
        ValueKind::I64(n) => n.to_string(),
        ValueKind::I128(n) => n.to_string(),
        ValueKind::U64(n) => n.to_string(),
        ValueKind::U128(n) => n.to_string(),
        ValueKind::Float(n) => n.to_string(),
        ValueKind::String(s) => serde_json::to_string(s).expect("strings serialize"),
        ValueKind::Array(items) => format!(
            "[{}]",
            items
                .iter()
                .map(toml_literal)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        ValueKind::Table(_) => "{..}".to_owned(),
    }
}

/// The settings `default.toml` sets, by dotted key, with their values as TOML.
fn defaults_set(prefix: &str, table: &Map<String, Value>, out: &mut BTreeMap<String, String>) {
    for (name, value) in table {
        let key = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        match &value.kind {
            ValueKind::Table(inner) => defaults_set(&key, inner, out),
            _ => {
                out.insert(key, toml_literal(value));
            }
        }
    }
}

/// One row of a setting table.
#[derive(Debug)]
struct Row {
    line: usize,
    variables: String,
    default: String,
}

/// The rows of the reference's setting tables, by key; duplicates and malformed rows are
/// reported in `problems`.
fn documented(text: &str, problems: &mut Vec<String>) -> BTreeMap<String, Row> {
    let mut rows = BTreeMap::new();
    // None outside a table; Some(is a setting table) inside one.
    let mut table: Option<bool> = None;
    for (index, line) in text.lines().enumerate() {
        let line_no = index + 1;
        let trimmed = line.trim();
        if !trimmed.starts_with('|') {
            table = None;
            continue;
        }
        // An escaped `\|` belongs to its cell.
        let unescaped = trimmed.replace("\\|", "\u{1}");
        let cells: Vec<String> = unescaped
            .trim_matches('|')
            .split('|')
            .map(|cell| cell.trim().replace('\u{1}', "|"))
            .collect();
        let cells: Vec<&str> = cells.iter().map(String::as_str).collect();
        let Some(setting_table) = table else {
            table = Some(cells.first() == Some(&"Setting"));
            if table == Some(true) && cells != ["Setting", "Variables", "Default", "Meaning"] {
                problems.push(format!(
                    "line {line_no}: a setting table's header is \
                     `| Setting | Variables | Default | Meaning |`"
                ));
            }
            continue;
        };
        if !setting_table || cells.iter().all(|c| c.chars().all(|ch| "-: ".contains(ch))) {
            continue;
        }
        let key = cells
            .first()
            .and_then(|c| c.strip_prefix('`'))
            .and_then(|c| c.strip_suffix('`'))
            .filter(|k| !k.contains('`'));
        let (Some(key), [_, variables, default, meaning]) = (key, cells.as_slice()) else {
            problems.push(format!(
                "line {line_no}: a setting row is `| `key` | variables | default | meaning |`"
            ));
            continue;
        };
        if meaning.is_empty() {
            problems.push(format!(
                "line {line_no}: `{key}` says nothing of what it means"
            ));
        }
        let row = Row {
            line: line_no,
            variables: (*variables).to_owned(),
            default: (*default).to_owned(),
        };
        if let Some(earlier) = rows.insert(key.to_owned(), row) {
            problems.push(format!(
                "line {line_no}: `{key}` is documented twice (also line {})",
                earlier.line
            ));
        }
    }
    rows
}

/// The names in backticks in a cell.
fn quoted(cell: &str) -> Vec<&str> {
    cell.split('`').skip(1).step_by(2).collect()
}

#[test]
fn the_configuration_reference_lists_every_setting_its_default_and_its_variables() {
    let text = std::fs::read_to_string(REFERENCE).expect("docs/configuration.md is readable");
    let mut problems = Vec::new();
    let rows = documented(&text, &mut problems);

    let read = settings_read();
    let mut defaults = BTreeMap::new();
    let table = File::from_str(DEFAULTS, FileFormat::Toml)
        .collect()
        .expect("config/default.toml parses");
    defaults_set("", &table, &mut defaults);

    for key in read.iter().chain(defaults.keys()).collect::<BTreeSet<_>>() {
        if !rows.contains_key(key) {
            problems.push(format!(
                "`{key}` is a setting but docs/configuration.md does not document it"
            ));
        }
    }
    for (key, row) in &rows {
        let line = row.line;
        if !read.contains(key) {
            problems.push(format!(
                "line {line}: `{key}` is documented but no setting has that name"
            ));
            continue;
        }
        match defaults.get(key) {
            Some(value) => {
                if !row.default.starts_with(&format!("`{value}`")) {
                    problems.push(format!(
                        "line {line}: `{key}` defaults to `{value}` in config/default.toml, \
                         but the reference says {}",
                        row.default
                    ));
                }
            }
            None => {
                if row.default.starts_with('`') {
                    problems.push(format!(
                        "line {line}: `{key}` is not set in config/default.toml: say in words \
                         what holds when it is unset, not {}",
                        row.default
                    ));
                }
            }
        }
        let own = format!("CARDGATE__{}", key.replace('.', "__").to_uppercase());
        let named: Vec<&str> = NAMED_VARIABLES
            .iter()
            .filter(|(_, k)| k == key)
            .map(|(v, _)| *v)
            .collect();
        let given = quoted(&row.variables);
        if key.contains("[]") {
            if row.variables != "files only" {
                problems.push(format!(
                    "line {line}: `{key}` is an entry of a list of tables: its variables are \
                     `files only`"
                ));
            }
            continue;
        }
        if row.variables == "files only" {
            if !named.is_empty() {
                problems.push(format!("line {line}: `{key}` is also set by {named:?}"));
            }
            continue;
        }
        if !given.contains(&own.as_str()) {
            problems.push(format!("line {line}: `{key}` is set by `{own}`"));
        }
        for variable in &named {
            if !given.contains(variable) {
                problems.push(format!("line {line}: `{key}` is also set by `{variable}`"));
            }
        }
        for variable in given {
            if variable != own && !named.contains(&variable) {
                problems.push(format!(
                    "line {line}: `{variable}` does not set `{key}` (see NAMED_VARIABLES)"
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "docs/configuration.md is out of step with the settings:\n{}",
        problems.join("\n")
    );
}

#[test]
fn every_setting_of_the_types_is_found() {
    let read = settings_read();
    // One of each shape: a plain value, an optional one, an untagged list, an optional table,
    // and entries of a list of tables, with renamed fields.
    for key in [
        "server.listen",
        "database.url",
        "authn.chain",
        "authn.static.htpasswd",
        "authn.static.users[].password",
        "authz.static.acl[].type",
        "token.previous[].kid",
        "throttle.trusted_proxies",
        "log.format",
    ] {
        assert!(read.contains(key), "{key} not in {read:?}");
    }
    assert!(
        !read.contains("server"),
        "tables are not settings: {read:?}"
    );
}
