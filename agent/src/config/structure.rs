//! Every structural error of a configuration in one run: unknown keys and values of
//! the wrong type, each at its key or value. The first error the deserializer finds is
//! recorded, its key–value pair is blanked out (replaced by spaces, so that every
//! offset stays where it was) and the text is read again, until it reads or an error
//! cannot be tied to one key.
use toml_edit::{ImDocument, Item, Table};

/// Most errors reported for one file.
const MAX_ERRORS: usize = 32;

/// The structural errors of `text` as (byte offset, message), in the order found;
/// empty when it deserializes into `T`.
pub(super) fn errors<T: serde::de::DeserializeOwned>(text: &str) -> Vec<(usize, String)> {
    let mut text = text.to_owned();
    let mut found = Vec::new();
    while found.len() < MAX_ERRORS {
        let Err(e) = toml::from_str::<T>(&text) else {
            break;
        };
        let offset = e.span().map_or(0, |s| s.start);
        found.push((offset, with_hint(e.message())));
        match pair_at(&text, offset) {
            Some(range) => blank(&mut text, range),
            None => break,
        }
    }
    found
}

/// serde's `unknown field `NAME`, expected one of …` with ` (did you mean `KEY`?)` after
/// the name when a known key is a likely spelling of it; any other message as it is.
fn with_hint(message: &str) -> String {
    let Some(rest) = message.strip_prefix("unknown field `") else {
        return message.to_owned();
    };
    let Some((name, expected)) = rest.split_once("`, expected ") else {
        return message.to_owned();
    };
    let known = expected
        .trim_start_matches("one of ")
        .split(", ")
        .map(|k| k.trim_matches('`'));
    let hint = crate::policy::did_you_mean(name, known);
    format!("unknown field `{name}`{hint}, expected {expected}")
}

/// The byte range of the innermost `key = value` pair whose key or value holds
/// `offset`, in any table.
fn pair_at(text: &str, offset: usize) -> Option<std::ops::Range<usize>> {
    let doc = ImDocument::parse(text).ok()?;
    pair_in(doc.as_table(), offset)
}

fn pair_in(table: &Table, offset: usize) -> Option<std::ops::Range<usize>> {
    for (key, item) in table.iter() {
        if let Item::Table(inner) = item {
            if let Some(range) = pair_in(inner, offset) {
                return Some(range);
            }
            continue;
        }
        let key_span = table.key(key).and_then(|k| k.span())?;
        let end = item.span().map_or(key_span.end, |v| v.end);
        if (key_span.start..end.max(key_span.end)).contains(&offset) {
            return Some(key_span.start..end);
        }
    }
    None
}

/// Replaces the bytes of `range` by spaces, newlines kept.
fn blank(text: &mut String, range: std::ops::Range<usize>) {
    let blanked: String = text[range.clone()]
        .chars()
        .map(|c| if c == '\n' { '\n' } else { ' ' })
        .collect();
    // Same length only for ASCII: pad what multi-byte characters leave over.
    let pad = range.len() - blanked.len();
    text.replace_range(range, &format!("{blanked}{}", " ".repeat(pad)));
}
